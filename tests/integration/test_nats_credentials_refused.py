"""attack26b F2: NATS refusing the credentials after a connection was made (a server restarted on the same port
with another token: a ``gamead up`` stack re-started on a fixed ``embedded.nats_port``, or a rotated token). Before,
``gamead worker`` and ``gamead serve`` retried for ever, logging ``retrying every 0.5 s`` every 5 s; ``/readyz`` said
``no answer for 42 s``, a submit's 503 ``NATS did not answer in time``, ``/healthz`` was 200 for 60 s. Now each says
``NATS refuses our credentials: Authorization Violation`` (the log once), and after ``nats.refused_exit_after``
seconds of refusals both exit with code 5 and one line, as at start. A plain nats-server started and restarted by
its PID."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from gamead_core.embedded import EmbeddedNats
from tests.support import Proc, ad, clean_env, run_gamead, start_api, start_worker, wait_for, wait_terminal

REFUSED = "NATS refuses our credentials: Authorization Violation"


@contextmanager
def _stack(tmp_path: Path, token: str, api_env: dict[str, str], worker_env: dict[str, str] | None = None,
           ) -> Iterator[tuple[EmbeddedNats, str, Proc, Proc]]:
    """A plain nats-server requiring ``token``, an API and a ready worker given it (and ``api_env``, the worker
    ``worker_env`` or the same): ``(server, api url, api, worker)``, every process stopped at the end."""
    server = EmbeddedNats(tmp_path / "nats", token=token).start()
    logs = tmp_path / "logs"
    procs: list[Proc] = []
    try:
        api, url = start_api(server.url, logs, GAMEAD_NATS__TOKEN=token, **api_env)
        procs.append(api)
        procs.append(start_worker(server.url, logs, ready=True, GAMEAD_NATS__TOKEN=token,
                                  **(api_env if worker_env is None else worker_env)))
        yield server, url, api, procs[1]
    finally:
        for proc in reversed(procs):
            proc.stop()
        server.stop()


def _exits_5_naming_the_refusal(proc: Proc) -> str:
    """Wait for ``proc`` to end; it must exit 5, its last line naming the refusal, with no traceback. Its output."""
    wait_for(lambda: not proc.alive(), timeout=90, what=f"{proc.name} to exit")
    assert proc.popen is not None and proc.popen.returncode == 5, proc.output()[-3000:]
    last = proc.output().strip().splitlines()[-1]
    assert "Authorization Violation" in last and "nats.refused_exit_after" in last, last
    assert "Traceback" not in proc.output()
    return proc.output()


@pytest.mark.timeout(240)
def test_credentials_refused_after_a_restart_are_named_everywhere_and_end_worker_and_api_with_exit_5(
        tmp_path: Path) -> None:
    env = {"GAMEAD_NATS__REFUSED_EXIT_AFTER": "8", "GAMEAD_WORKER__DRAIN_TIMEOUT": "2"}
    with _stack(tmp_path, "first-token-f2", env) as (server, url, api, worker):
        server.stop()
        server.token = "second-token-f2"  # same port, same store dir, another token
        server.start()

        ready = wait_for(lambda: _refused_readyz(url), timeout=60, what="/readyz to name the refused credentials")
        assert ready["status"] == "unready" and "no answer" not in str(ready), ready
        assert str(ready["checks"]["nats"]).startswith(f"unavailable: {REFUSED}"), ready  # type: ignore[index]
        posted = httpx.post(f"{url}/ads", json=ad("Refused Credentials", 1), timeout=10)
        assert posted.status_code == 503 and posted.json()["error"]["code"] == "queue_unavailable", posted.text
        assert REFUSED in posted.json()["error"]["message"], posted.text
        health = httpx.get(f"{url}/healthz", timeout=2)
        # not a liveness failure before nats.refused_exit_after (review26 F3): 200, naming the refusal
        assert health.status_code == 200 and REFUSED in health.json()["refused"], health.text

        # retrying the same credentials cannot help: both end, exit 5, the last line naming the cause
        for proc in (worker, api):
            output = _exits_5_naming_the_refusal(proc)
            # the refusal's own line, once (not every attempt); the server away meanwhile (a restart slow under load:
            # "[Errno 111] Connection refused; retrying every 0.5 s") is another line, not the refusal said again
            said = [line for line in output.splitlines() if REFUSED in line and "retrying every 0.5 s" in line]
            assert len(said) == 1, "\n".join(said)  # whole lines: a list's repr cut two of them into one
            last = output.strip().splitlines()[-1]
            assert "the configured nats.token is not the one the server requires" in last, last  # not "set it"

        # at start the same hint: the token is set, it is the wrong one (not "set nats.token")
        again = run_gamead("worker", "--nats-url", server.url, env=clean_env(GAMEAD_NATS__TOKEN="first-token-f2"),
                           cwd=tmp_path, timeout=60)
        lines = again.stderr.strip().splitlines()
        assert again.returncode == 5 and len(lines) == 1, again.stderr[-2000:]
        assert "the configured nats.token is not the one the server requires" in lines[0], lines
        assert "set nats.token, or" not in lines[0] and "first-token-f2" not in again.stderr


def _answer(url: str, path: str) -> httpx.Response | None:
    try:
        return httpx.get(f"{url}{path}", timeout=2)
    except httpx.HTTPError:
        return None


def _refused_readyz(url: str) -> dict[str, object] | None:
    answer = _answer(url, "/readyz")
    return answer.json() if answer is not None and REFUSED in answer.text else None


@pytest.mark.timeout(180)
def test_a_token_rotated_by_a_config_reload_ends_worker_and_api_with_exit_5(tmp_path: Path) -> None:
    """review26 F1: a server that reloads its config (SIGHUP) with another token makes nats-py close the connected
    client for good, with no error_cb and no reconnect. Before, nothing recorded it: the worker ran for ever on a
    closed client and /readyz said "no answer". Now /readyz names the refusal and both exit 5 within the grace."""
    env = {"GAMEAD_NATS__REFUSED_EXIT_AFTER": "6", "GAMEAD_WORKER__DRAIN_TIMEOUT": "2"}
    with _stack(tmp_path, "first-token-r1", env) as (server, url, api, worker):
        server.token = "second-token-r1"
        server.write_argv()  # the same port: the config rewritten with the other token
        assert server.proc is not None
        os.kill(server.proc.pid, signal.SIGHUP)  # reload: no restart, the connections stay

        ready = wait_for(lambda: _refused_readyz(url), timeout=30, what="/readyz to name the refused credentials")
        assert ready["status"] == "unready" and "no answer" not in str(ready), ready
        for proc in (worker, api):
            output = _exits_5_naming_the_refusal(proc)
            # once: nats-py's closed_cb and the connection's guard, which takes a close nats-py said nothing of
            # (gamead_core.queue.reader_guard), both bring the close; the refusal is said once
            said = [line for line in output.splitlines() if "NATS closed the connection (nats-py does not" in line]
            assert len(said) == 1, "\n".join(said)


@pytest.mark.timeout(240)
def test_a_brief_refusal_keeps_both_running_and_healthz_200_then_they_serve_again(tmp_path: Path) -> None:
    """review26 F3: a refusal shorter than nats.refused_exit_after (an auth callout down, a token rotated early)
    must not make a liveness probe restart the fleet, and refused_exit_after 0 means "never exit, keep retrying".
    Before, /healthz was 503 at the first refusal and 0 was refused at start (exit 5)."""
    with _stack(tmp_path, "right-token-r3", {"GAMEAD_NATS__REFUSED_EXIT_AFTER": "600"},
                {"GAMEAD_NATS__REFUSED_EXIT_AFTER": "0"}) as (server, url, api, worker):
        server.stop()
        server.token = "other-token-r3"
        server.start()

        wait_for(lambda: _refused_readyz(url), timeout=60, what="/readyz to name the refused credentials")
        health = httpx.get(f"{url}/healthz", timeout=2)
        assert health.status_code == 200 and REFUSED in health.json()["refused"], health.text
        assert api.alive() and worker.alive()

        server.stop()
        server.token = "right-token-r3"  # NATS takes the credentials again
        server.start()
        wait_for(lambda: (a := _answer(url, "/readyz")) is not None and a.status_code == 200, timeout=60,
                 what="/readyz to be ready again")
        health = httpx.get(f"{url}/healthz", timeout=2)
        assert health.status_code == 200 and "refused" not in health.json(), health.text
        with httpx.Client(base_url=url, timeout=10) as client:
            posted = client.post("/ads", json=ad("Brief Refusal", 4))
            assert posted.status_code == 202, posted.text
            assert wait_terminal(client, posted.json()["id"])["status"] == "completed"
        assert api.alive() and worker.alive()
