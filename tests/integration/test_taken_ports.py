"""A listener on a taken port ends its process: one red line naming the port and the setting, exit 5 (README
exit-code table: a configuration that cannot work), nothing left running. Real processes, a port the test holds.

Before: ``gamead serve`` on a taken ``api.port`` connected to NATS, started the app, logged uvicorn's
``[Errno 98] … address already in use`` and ``Waiting for application shutdown.``, then hung for ever, deaf to
SIGTERM."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator

import pytest

from gamead_core.embedded import EmbeddedNats, free_port
from tests.support import clean_env, run_gamead


@pytest.fixture
def held_port() -> Iterator[int]:
    """A loopback port this test listens on for its whole length."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield int(taken.getsockname()[1])


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run ``gamead *args``; a process still alive after the deadline is killed (as subprocess.run does) and fails; forked by the fork server."""
    return run_gamead(*args, env=env, timeout=90)


def test_serve_on_a_taken_api_port_exits_5_with_one_line(nats_server: EmbeddedNats, held_port: int) -> None:
    result = _run(["serve"], clean_env(GAMEAD_NATS__URL=nats_server.url, GAMEAD_API__PORT=str(held_port)))
    assert result.returncode == 5, result.stderr[-2000:]
    assert result.stderr.strip().splitlines() == [
        f"error: cannot listen on 127.0.0.1:{held_port} (api.port): port {held_port} is taken by another process "
        "(address already in use); choose another api.port"]
    assert "Waiting for application" not in result.stdout + result.stderr  # refused before the app started


def test_serve_with_the_port_flag_on_a_taken_port_names_it(nats_server: EmbeddedNats, held_port: int) -> None:
    result = _run(["serve", "--port", str(held_port)], clean_env(GAMEAD_NATS__URL=nats_server.url))
    assert result.returncode == 5 and f"port {held_port} is taken" in result.stderr


def test_worker_on_a_taken_metrics_port_exits_5_with_one_line(nats_server: EmbeddedNats, held_port: int) -> None:
    result = _run(["worker", "--id", "taken-metrics"],
                  clean_env(GAMEAD_NATS__URL=nats_server.url, GAMEAD_WORKER__METRICS_PORT=str(held_port)))
    assert result.returncode == 5, result.stderr[-2000:]
    assert result.stderr.strip().splitlines()[-1:] == [
        f"error: cannot listen on 127.0.0.1:{held_port} (worker.metrics_port): port {held_port} is taken by another "
        "process (address already in use); choose another worker.metrics_port"]


@pytest.mark.parametrize("role", ["serve", "worker"])
def test_a_taken_port_is_refused_before_nats_is_even_tried(role: str, held_port: int) -> None:
    """No NATS at the URL (it would be tried for ever, nats.give_up_after 0): the port is refused first."""
    variable = "GAMEAD_API__PORT" if role == "serve" else "GAMEAD_WORKER__METRICS_PORT"
    result = _run([role], clean_env(GAMEAD_NATS__URL=f"nats://127.0.0.1:{free_port()}", **{variable: str(held_port)}))
    assert result.returncode == 5, result.stderr[-2000:]
    assert f"port {held_port} is taken" in result.stderr and "nats" not in result.stderr.lower()


@pytest.mark.parametrize(("role", "setting"), [("serve", "api.host"), ("worker", "worker.metrics_host")])
def test_a_listen_host_that_does_not_resolve_names_the_host_setting(role: str, setting: str) -> None:
    """A host name that passes load but resolves to nothing (``.invalid``: RFC 6761) is the host's fault: the line
    names ``api.host`` (``worker.metrics_host``), not "choose another api.port" as it did (attack28c F1)."""
    variable = "GAMEAD_" + setting.upper().replace(".", "__")
    result = _run([role], clean_env(GAMEAD_NATS__URL=f"nats://127.0.0.1:{free_port()}",
                                    GAMEAD_AUTH__ENABLED="false", GAMEAD_WORKER__METRICS_PORT=str(free_port()),
                                    **{variable: "my-host.invalid"}))
    assert result.returncode == 5, result.stderr[-2000:]
    (line,) = result.stderr.strip().splitlines()[-1:]
    assert f"({setting}): my-host.invalid does not resolve" in line and line.endswith(f"choose another {setting}")
