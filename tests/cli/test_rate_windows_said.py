"""attack43b F5: the autoscaler's reason line (``gamead up``'s console, ``gamead scale status``, ``gamead top``) said
``arriving 2.2 ads/s`` with no window, and ``scale status``'s ``queued 0.21 ads/s`` and ``measured: … ads/s
completed`` none either, though each is the throughput panel's ``last minute`` rate (or a restarted leader's
``last 4 s``). Now every rate printed says its window.

Without the fix (gamead_core/scaling/reason.py, observe.py, loop.py and gamead_cli/commands/scale.py at HEAD): the
reason read ``backlog 1, arriving 1.00 ads/s at 10.0 ads/s per worker (initial, none measured yet) needs 1``, the
observed row ``… queued 1.00 ads/s``; the unit cases failed (no window to give)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from gamead_cli.commands.scale import per_worker_text
from gamead_cli.main import app
from gamead_core.config.autoscaler import AutoscalerSettings
from gamead_core.embedded import EmbeddedNats
from gamead_core.queue.depth import LevelDepth
from gamead_core.scaling.policy import Observation, ScalingPolicy
from tests.support import Proc, ad, start_api, wait_for

pytestmark = pytest.mark.usefixtures("isolated_env")


def test_the_reason_line_says_the_window_of_its_arrival_rate() -> None:
    seen = Observation(at=0.0, levels=[LevelDepth(3, 600, oldest_age=0.0)], ack_pending=0, arrival_rate=80.0,
                       completion_rate=0.0, per_worker_rate=40.0, current_replicas=3, rate_window_s=11.2)
    assert "arriving 80.0 ads/s (last 11 s) at 40.0 ads/s per worker" in ScalingPolicy(AutoscalerSettings()) \
        .decide(seen).reason


def test_the_measured_per_worker_figure_says_the_window_of_its_completions() -> None:
    basis = {"bound": "measured", "completedPerSec": 120.0, "workers": 2}
    assert per_worker_text(60.0, basis, 60.0) == "60.0 ads/s (measured: 120.0 ads/s completed (last minute) by 2 " \
                                                 "busy worker(s))"


def test_a_leaders_reason_and_scale_status_say_each_rates_window(
        fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path, runner: CliRunner,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A real API leading the autoscaler (backend none, an initial per-worker rate: a reason with arrivals), one ad
    submitted and no worker: the decision names ``arriving … ads/s (last N s)`` and ``scale status`` its queued
    rate's window, the same N as ``observed.windowSeconds``."""
    monkeypatch.delenv("COLUMNS", raising=False)
    proc, url = start_api(fresh_nats().url, tmp_path, GAMEAD_AUTOSCALER__INTERVAL="0.5",
                          GAMEAD_AUTOSCALER__INITIAL_PER_WORKER_RATE="10")
    procs.append(proc)
    assert httpx.post(f"{url}/ads", json=ad("Window"), timeout=10).status_code == 202

    def arriving() -> dict[str, Any] | None:
        doc = httpx.get(f"{url}/v1/scale", timeout=5).json()
        reason = next((d.get("reason") or "" for d in doc.get("decisions") or []
                       if "arriving" in (d.get("reason") or "")), None)
        return doc if reason else None

    wait_for(arriving, timeout=30, interval=0.1, what="a decision with arrivals")
    table = runner.invoke(app, ["scale", "status", "--api", url])
    assert table.exit_code == 0, table.output
    said = re.search(r"arriving [0-9.]+ ads/s \((last (\d+ s|minute))\) at ", table.stdout)
    assert said, table.stdout
    words = " ".join(table.stdout.split())  # the observed row may fold at 80 columns (units46: its counts say ads)
    assert re.search(r"queued [0-9.]+ ads/s \(last (\d+ s|minute)\)", words), table.stdout
