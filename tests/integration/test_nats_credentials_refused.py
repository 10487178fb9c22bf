"""attack26b F2: NATS refusing the credentials after a connection was made (a server restarted on the same port
with another token: a ``gamead up`` stack re-started on a fixed ``embedded.nats_port``, or a rotated token). Before,
``gamead worker`` and ``gamead serve`` retried for ever, logging ``retrying every 0.5 s`` every 5 s; ``/readyz`` said
``no answer for 42 s``, a submit's 503 ``NATS did not answer in time``, ``/healthz`` was 200 for 60 s. Now each says
``NATS refuses our credentials: Authorization Violation`` (the log once), and after ``nats.refused_exit_after``
seconds of refusals both exit with code 5 and one line, as at start. A plain nats-server started and restarted by
its PID."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from gamead_core.embedded import EmbeddedNats
from tests.support import ad, clean_env, run_gamead, start_api, start_worker, wait_for

REFUSED = "NATS refuses our credentials: Authorization Violation"


@pytest.mark.timeout(240)
def test_credentials_refused_after_a_restart_are_named_everywhere_and_end_worker_and_api_with_exit_5(
        tmp_path: Path) -> None:
    server = EmbeddedNats(tmp_path / "nats", token="first-token-f2").start()
    env = {"GAMEAD_NATS__TOKEN": "first-token-f2", "GAMEAD_NATS__REFUSED_EXIT_AFTER": "8",
           "GAMEAD_WORKER__DRAIN_TIMEOUT": "2"}
    logs = tmp_path / "logs"
    api = worker = None
    try:
        api, url = start_api(server.url, logs, **env)
        worker = start_worker(server.url, logs, ready=True, **env)
        server.stop()
        server.token = "second-token-f2"  # same port, same store dir, another token
        server.start()

        def readiness() -> dict[str, object] | None:
            try:
                answer = httpx.get(f"{url}/readyz", timeout=2)
            except httpx.HTTPError:
                return None
            return answer.json() if REFUSED in answer.text else None

        ready = wait_for(readiness, timeout=60, what="/readyz to name the refused credentials")
        assert ready["status"] == "unready" and "no answer" not in str(ready), ready
        assert str(ready["checks"]["nats"]).startswith(f"unavailable: {REFUSED}"), ready  # type: ignore[index]
        posted = httpx.post(f"{url}/ads", json=ad("Refused Credentials", 1), timeout=10)
        assert posted.status_code == 503 and posted.json()["error"]["code"] == "queue_unavailable", posted.text
        assert REFUSED in posted.json()["error"]["message"], posted.text
        health = httpx.get(f"{url}/healthz", timeout=2)
        assert health.status_code == 503 and REFUSED in health.json()["error"]["message"], health.text

        # retrying the same credentials cannot help: both end, exit 5, the last line naming the cause
        for proc in (worker, api):
            wait_for(lambda proc=proc: not proc.alive(), timeout=90, what=f"{proc.name} to exit")  # type: ignore[misc]
            assert proc.popen is not None and proc.popen.returncode == 5, proc.output()[-3000:]
            last = proc.output().strip().splitlines()[-1]
            assert "Authorization Violation" in last and "nats.refused_exit_after" in last, last
            assert "Traceback" not in proc.output()
            said = [line for line in proc.output().splitlines() if "retrying every 0.5 s" in line]
            assert len(said) == 1 and REFUSED in said[0], said  # once, not every attempt
            assert "the configured nats.token is not the one the server requires" in last, last  # not "set it"

        # at start the same hint: the token is set, it is the wrong one (not "set nats.token")
        again = run_gamead("worker", "--nats-url", server.url, env=clean_env(GAMEAD_NATS__TOKEN="first-token-f2"),
                           cwd=tmp_path, timeout=60)
        lines = again.stderr.strip().splitlines()
        assert again.returncode == 5 and len(lines) == 1, again.stderr[-2000:]
        assert "the configured nats.token is not the one the server requires" in lines[0], lines
        assert "set nats.token, or" not in lines[0] and "first-token-f2" not in again.stderr
    finally:
        for proc in (worker, api):
            if proc is not None:
                proc.stop()
        server.stop()
