"""Each ``gamead up`` stack's embedded nats-server requires a secret of that stack (``nats.token``, made at its
start unless the operator configured NATS credentials): before, it ran without authorization on a loopback port,
so any local process (a worker of a second stack pointed at the wrong port, another user's script) could connect
and take this stack's ads. Its children and the ``gamead worker --config … --nats-url …`` it prints present it;
a connection without it is refused (``Authorization Violation``), and a ``gamead worker`` without it ends with one
red line and exit 5. The secret is never printed."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import nats
import nats.errors
import pytest

from gamead_core.embedded import EmbeddedNats
from tests.support import ad, clean_env, run_gamead, up_stack, wait_terminal

FAST = {"GAMEAD_WORKER__DRAIN_TIMEOUT": "3", "GAMEAD_LOG__LEVEL": "WARNING"}


def _connect(url: str, **credentials: str) -> str:
    """``ok`` if a plain nats-py client with ``credentials`` (``token=…``) is let in at ``url``, else its error."""
    async def attempt() -> str:
        async def quiet(exc: Exception) -> None:
            return None

        try:
            nc = await nats.connect(url, allow_reconnect=False, max_reconnect_attempts=1, connect_timeout=5,
                                    error_cb=quiet, **credentials)
        except (OSError, nats.errors.Error, asyncio.TimeoutError) as exc:
            return str(exc)
        await nc.close()
        return "ok"

    return asyncio.run(attempt())


def _shell_env() -> dict[str, str]:
    """A user's second terminal: the venv's ``gamead`` on PATH, none of the stack's ``GAMEAD_*``."""
    env = clean_env()
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


@pytest.mark.timeout(300)  # a stack's start and a worker's, slow on a loaded machine
def test_a_stacks_nats_refuses_a_client_without_its_secret_and_the_printed_worker_command_joins(
        tmp_path: Path) -> None:
    up = up_stack(tmp_path, "--workers", "0", **FAST).start()
    worker: subprocess.Popen[bytes] | None = None
    try:
        output = up.wait_ready()
        found = re.search(r"nats-server \(JetStream, pid \d+\) on (nats://127\.0\.0\.1:\d+)", output)
        assert found is not None, output
        nats_url = found.group(1)
        # anyone else on this machine: refused, with no token or a wrong one
        assert "Authorization Violation" in _connect(nats_url)
        token = up.nats_token
        assert len(token) >= 40  # secrets.token_urlsafe(32)
        assert "requiring this stack's own token (nats.token in" in output
        assert "Authorization Violation" in _connect(nats_url, token="not-" + token)
        assert _connect(nats_url, token=token) == "ok"
        assert (up.data_dir / "nats.conf").stat().st_mode & 0o777 == 0o600  # the server's copy: owner-only too

        # a gamead worker pointed at it without the secret: one red line naming the cause, exit 5
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        refused = run_gamead("worker", "--nats-url", nats_url, env=clean_env(), cwd=elsewhere, timeout=60)
        assert refused.returncode == 5, refused.stderr[-2000:]
        lines = refused.stderr.strip().splitlines()
        assert len(lines) == 1 and "Authorization Violation" in lines[0] and "nats.token" in lines[0], lines
        assert "Traceback" not in refused.stderr
        # an API too (on any free port: it never binds one): one line and exit 5, not a 503 for every request
        serve = run_gamead("serve", "--port", "0", "--nats-url", nats_url, env=clean_env(), cwd=elsewhere, timeout=60)
        assert serve.returncode == 5 and "Authorization Violation" in serve.stderr, serve.stderr[-2000:]
        assert len(serve.stderr.strip().splitlines()) == 1 and "Traceback" not in serve.stderr

        # the printed worker command, verbatim, from another terminal in another directory: it joins and works
        printed = output.split("Next, in another terminal:\n", 1)[1].splitlines()[0].strip()
        assert f"--nats-url {nats_url}" in printed and "--config" in printed, printed
        worker = subprocess.Popen(["bash", "-c", "exec " + printed], env=_shell_env(), cwd=elsewhere,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        with httpx.Client(base_url=up.url, timeout=10) as client:
            ad_id = client.post("/ads", json=ad("Joined With The Secret", 1)).json()["id"]
            assert wait_terminal(client, ad_id, timeout=60)["status"] == "completed"
        assert worker.poll() is None

        # the secret itself is never said: not on the console, not in any log of the stack
        logs = [up.data_dir / "nats-server.log", *sorted((up.data_dir / "logs").glob("*.log"))]
        assert token not in up.output()
        assert all(token not in log.read_text(errors="replace") for log in logs)
    finally:
        if worker is not None and worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
        up.stop()


@pytest.mark.timeout(300)
def test_a_configured_nats_token_is_the_one_the_embedded_server_requires(tmp_path: Path) -> None:
    up = up_stack(tmp_path, "--workers", "1", "--no-autoscale", GAMEAD_NATS__TOKEN="operators-own-token",
                  **FAST).start()
    try:
        output = up.wait_ready()
        nats_url = re.search(r"on (nats://127\.0\.0\.1:\d+)", output).group(1)  # type: ignore[union-attr]
        assert "Authorization Violation" in _connect(nats_url)
        assert "requiring the configured nats.token," in output and "nats.user" not in output  # what is set
        assert up.nats_token == "operators-own-token"
        assert _connect(nats_url, token="operators-own-token") == "ok"
        with httpx.Client(base_url=up.url, timeout=10) as client:  # its API and worker present it
            ad_id = client.post("/ads", json=ad("Operator Token", 1)).json()["id"]
            assert wait_terminal(client, ad_id, timeout=60)["status"] == "completed"
    finally:
        up.stop()


@pytest.mark.parametrize("token", ['a"quote\\and-backslash', "$not-a-variable"])
def test_the_embedded_server_requires_a_token_that_needs_quoting_as_it_is(tmp_path: Path, token: str) -> None:
    with EmbeddedNats(tmp_path / "nats", token=token) as server:
        assert "Authorization Violation" in _connect(server.url)
        assert _connect(server.url, token=token) == "ok"
