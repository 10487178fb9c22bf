"""Issue 14 leftovers found from a clean clone (C3): small operator-facing defects, each with its figure."""

from __future__ import annotations

import shlex
import subprocess
import uuid
from pathlib import Path

import httpx
import pytest

from tests.support import Proc, ad, up_stack, wait_for

# --- C3.2: a single-valued header folded into one line ("k1, k2", RFC 9110 §5.3) is two headers -------------


def test_a_folded_idempotency_key_is_refused_as_two_keys_and_nothing_is_queued(client: httpx.Client) -> None:
    """``Idempotency-Key: k1, k2`` was taken as the one key ``k1, k2``: a proxy joining two headers made a third
    ad. Now 400 ``duplicate_header``, saying why; neither key queued anything."""
    key = f"fold-{uuid.uuid4().hex}"
    resp = client.post("/ads", json=ad("Folded Key"), headers={"Idempotency-Key": f"{key}-1, {key}-2"})
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert error["code"] == "duplicate_header"
    assert error["details"] == {"header": "Idempotency-Key", "folded": True}
    assert "comma" in error["message"] and "RFC 9110" in error["message"]
    for part in (f"{key}-1", f"{key}-2"):
        first = client.post("/ads", json=ad("Folded Key"), headers={"Idempotency-Key": part})
        assert first.status_code == 202 and first.json()["duplicate"] is False


def test_a_folded_authorization_is_refused_as_two_tokens(client: httpx.Client) -> None:
    resp = client.get("/ads", headers={"Authorization": "Bearer one, Bearer two"})
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert error["code"] == "duplicate_header" and error["details"]["header"] == "Authorization"
    assert "RFC 6750" in error["message"]


def test_a_configured_token_cannot_hold_a_comma() -> None:
    from gamead_core.config import load_settings
    from gamead_core.errors import ConfigError

    with pytest.raises(ConfigError, match="comma"):
        load_settings(None, auth={"tokens": [{"name": "op", "token": "abc,def", "role": "operator"}]})


# --- C3.3: `gamead up --workers 0` prints hints that work in that mode ---------------------------------------


def test_up_with_no_worker_prints_a_worker_command_first_and_every_hint_works_verbatim(
        tmp_path: Path, procs: list[Proc]) -> None:
    """``gamead up --workers 0`` printed ``submit … --wait``, which no worker would ever answer. Now the first hint
    starts a worker on this stack, the submit hint has no ``--wait``, and every hint runs verbatim: the worker
    started by the first one analyses the ads the others queued."""
    from tests.integration.test_up import FAST, _ANSI, printed_commands, run_in_terminal, shell_env

    up = up_stack(tmp_path, "--workers", "0", **FAST).start()
    try:
        output = up.wait_ready()
        assert "no worker runs (--workers 0)" in output
        assert not [e for e in up.started() if str(e["name"]).startswith("worker")]
        commands = printed_commands(output)
        assert shlex.split(commands[0])[1] == "worker" and not any("--wait" in c for c in commands)
        worker = Proc("hint-worker", ["bash", "-c", f"exec {commands[0]}"], shell_env(up), tmp_path / "w.log")
        procs.append(worker.start())
        for command in commands[1:]:
            argv = shlex.split(command)
            if Path(argv[0]).name == "gamead" and argv[1] == "top":
                code, screen = run_in_terminal(command, shell_env(up), tmp_path, ready="quit", keys=b"q")
                assert code == 0, _ANSI.sub("", screen)[-2000:]
                continue
            result = subprocess.run(["bash", "-c", command], env=shell_env(up), cwd=tmp_path, capture_output=True,
                                    text=True, timeout=120)
            assert result.returncode == 0, f"{command}\n{result.stdout[-1500:]}\n{result.stderr[-1500:]}"
        with httpx.Client(base_url=up.url, timeout=10) as client:  # the hint's worker drains what was queued
            def completed() -> bool:
                return client.get("/ads", params={"status": "completed", "limit": 500}).json()["count"] == 101

            wait_for(completed, timeout=60, what="the hint's worker to analyse the 101 queued ads")
        assert worker.alive(), worker.output()[-2000:]
    finally:
        for proc in procs:
            proc.stop(timeout=10)
        up.kill_everything()
