"""attack44 F4: two `gamead up` sharing one NATS (B's ``nats.url`` = the NATS A's autoscaler leads) share one
autoscaler, on purpose (one per NATS: the queue is shared, two would double the fleet: gamead_core.scaling.stacks).
Before, B was told nothing: in B's directory ``gamead scale status`` showed A's leader and A's bounds as if they were
B's, ``gamead scale set`` answered "applied by the autoscaler's leader" and A's workers moved, and B's console was
silent while its workers never scaled. Now B's console, ``scale status`` and ``scale set`` name A's stack (pid, data
dir) and whose workers move; A's workers move, B's stay at 1 until A stops and B leads. With the fix: passes.
Without it (the product files at HEAD): fails at its first check, KeyError 'thisStack' (``/v1/scale`` did not say
whose leader it is); the texts the later checks look for (B's console line, "another stack's autoscaler" in ``scale
status`` and ``scale set``) exist nowhere in the product at HEAD."""

from __future__ import annotations

import json
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from gamead_core.embedded import EmbeddedNats
from tests.support import UpStack, run_gamead, up_stack, wait_for

FAST = dict(GAMEAD_AUTOSCALER__INTERVAL="0.5", GAMEAD_AUTOSCALER__PERIOD_SECONDS="0.5")


def _scale(url: str) -> dict[str, Any]:
    try:
        return httpx.get(f"{url}/v1/scale", timeout=2).json()  # type: ignore[no-any-return]
    except (httpx.HTTPError, ValueError):
        return {}


def _leader(url: str) -> dict[str, Any]:
    return _scale(url).get("leader") or {}


def _workers(up: UpStack) -> int:
    """The workers ``up`` runs now (its PID file)."""
    return sum(1 for p in up.started() if str(p["name"]).startswith("worker-"))


@pytest.mark.timeout(400)
def test_a_second_stack_on_one_nats_is_told_whose_autoscaler_leads_and_whose_workers_an_override_moves(
        fresh_nats: Callable[[], EmbeddedNats], tmp_path: Path) -> None:
    server = fresh_nats()
    a = up_stack(tmp_path, "--workers", "1", "--max-workers", "2", name="a", GAMEAD_NATS__URL=server.url, **FAST)
    b = up_stack(tmp_path, "--workers", "1", "--max-workers", "3", name="b", GAMEAD_NATS__URL=server.url, **FAST)
    try:
        a.start().wait_ready()
        led = wait_for(lambda: (d := _leader(a.url)).get("id") and d, timeout=30, interval=0.1, what="A to lead")
        assert led["id"].endswith(f"-{a.pid}") and led["thisStack"] is True, led  # A's own API: its own leader
        b.start().wait_ready()

        # B's console: once, naming A's stack, and that B's workers stay at --workers
        said = wait_for(lambda: "led by another stack" in b.output() and b.output(), timeout=30, interval=0.1,
                        what="B to say another stack leads its NATS's autoscaler")
        assert f"gamead up pid {a.pid}" in said and str(a.data_dir) in said, said[-2000:]
        assert "this stack's workers stay at its --workers until it leads" in said

        # B's scale status: A's leader, said to be another stack's (its bounds are A's, 1-2, not B's 1-3)
        doc = json.loads(run_gamead("scale", "status", "-o", "json", "--api", b.url, env=b.env).stdout)
        assert doc["leader"]["thisStack"] is False and doc["leader"]["stack"] == str(a.data_dir), doc["leader"]
        shown = run_gamead("scale", "status", "--api", b.url, env=b.env)
        assert shown.returncode == 0 and "another stack's autoscaler" in " ".join(shown.stdout.split()), shown.stdout

        # B's scale set: says the override moves A's workers, not B's
        setting = run_gamead("scale", "set", "2", "--for", "1m", "--api", b.url, env=b.env)
        words = " ".join(setting.stdout.split())
        assert setting.returncode == 0, setting.stderr
        assert "applied at its next decision by another stack's autoscaler" in words, words
        assert f"pid {a.pid}" in words and "not this stack's" in words, words

        # what it said: A's workers moved (2), B's stayed at its --workers (1) — one autoscaler per NATS
        wait_for(lambda: _scale(a.url).get("current") == 2, timeout=30, interval=0.1, what="A to run 2 workers")
        assert _workers(b) == 1, b.started()
        # A stops (its lease released): B leads, its own leader now
        assert a.popen is not None
        a.popen.send_signal(signal.SIGINT)
        assert a.popen.wait(60) == 0
        wait_for(lambda: _leader(b.url).get("thisStack") is True, timeout=30, interval=0.1, what="B to lead")
    finally:
        b.kill_everything()  # by PID, from each stack's PID file: only what these stacks started
        a.kill_everything()
