"""A listener on a taken port ends its process: one red line naming the port and the setting, exit 5 (README
exit-code table: a configuration that cannot work), nothing left running. Real processes, a port the test holds.

Before: ``gamead serve`` on a taken ``api.port`` connected to NATS, started the app, logged uvicorn's
``[Errno 98] … address already in use`` and ``Waiting for application shutdown.``, then hung for ever, deaf to
SIGTERM."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gamead_core.embedded import EmbeddedNats
from gamead_core.errors import QueueUnavailable
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
def test_a_taken_port_is_refused_before_nats_is_even_tried(
        role: str, held_port: int, closed_port: Callable[[], int]) -> None:
    """No NATS at the URL (it would be tried for ever, nats.give_up_after 0): the port is refused first."""
    variable = "GAMEAD_API__PORT" if role == "serve" else "GAMEAD_WORKER__METRICS_PORT"
    result = _run([role], clean_env(GAMEAD_NATS__URL=f"nats://127.0.0.1:{closed_port()}", **{variable: str(held_port)}))
    assert result.returncode == 5, result.stderr[-2000:]
    assert f"port {held_port} is taken" in result.stderr and "nats" not in result.stderr.lower()


@pytest.mark.parametrize(("role", "setting"), [("serve", "api.host"), ("worker", "worker.metrics_host")])
def test_a_listen_host_that_does_not_resolve_names_the_host_setting(
        role: str, setting: str, closed_port: Callable[[], int]) -> None:
    """A host name that passes load but resolves to nothing (``.invalid``: RFC 6761) is the host's fault: the line
    names ``api.host`` (``worker.metrics_host``), not "choose another api.port" as it did (attack28c F1)."""
    variable = "GAMEAD_" + setting.upper().replace(".", "__")
    result = _run([role], clean_env(GAMEAD_NATS__URL=f"nats://127.0.0.1:{closed_port()}",
                                    GAMEAD_AUTH__ENABLED="false", GAMEAD_WORKER__METRICS_PORT=str(closed_port()),
                                    **{variable: "my-host.invalid"}))
    assert result.returncode == 5, result.stderr[-2000:]
    (line,) = result.stderr.strip().splitlines()[-1:]
    assert f"({setting}): my-host.invalid does not resolve" in line and line.endswith(f"choose another {setting}")


@pytest.mark.parametrize(("first", "second"), [
    ("embedded.nats_port", "embedded.nats_monitor_port"),
    ("api.port (--port)", "embedded.nats_port"),
    ("api.port (--port)", "embedded.nats_monitor_port"),
])
def test_up_given_one_port_for_two_of_its_listeners_is_refused_before_anything_starts(
        tmp_path: Path, first: str, second: str, closed_port: Callable[[], int]) -> None:
    """attack41b F1: ``embedded.nats_port`` = ``embedded.nats_monitor_port`` started nats-server, which exited,
    and ``gamead up`` ended exit 1 with one 1,943-character line of its start-up banner; ``--port`` = either of
    them started nats-server, then refused the API's port as "taken by another process" (its own nats-server).
    Now one line naming both settings, exit 5, and nothing started: the data dir it made is removed. Without the
    fix: exit 1 (a line of 1,900+ characters), then twice exit 5 with "taken by another process"."""
    port, other = closed_port(), closed_port()
    chosen = {name: port if name in (first, second) else 0
              for name in ("api.port (--port)", "embedded.nats_port", "embedded.nats_monitor_port")}
    api_port = chosen["api.port (--port)"] or other
    data = tmp_path / "stack"
    result = _run(["up", "--workers", "0", "--port", str(api_port), "--data-dir", str(data)],
                  clean_env(GAMEAD_EMBEDDED__NATS_PORT=str(chosen["embedded.nats_port"]),
                            GAMEAD_EMBEDDED__NATS_MONITOR_PORT=str(chosen["embedded.nats_monitor_port"])))
    assert result.returncode == 5, result.stderr[-2000:]
    assert result.stderr.strip().splitlines() == [
        f"error: {first} and {second} are both port {port}: each listener of this stack needs a port of its own — "
        "choose another for one of them (0 = any free port, for embedded.nats_port and embedded.nats_monitor_port)"]
    assert not data.exists()  # refused before it started a process: nothing of it is left


def test_a_nats_server_that_cannot_listen_is_named_by_its_fatal_line(tmp_path: Path, held_port: int) -> None:
    """nats-server exiting at its start (here its monitoring port is taken) is said by its ``[FTL]`` line, the
    reason, not by the last 2,000 characters of its log: the start-up banner, the reason at its end (attack41b F1:
    1,943 characters). Without the fix: the message is 2,000+ characters and holds ``Starting nats-server``."""
    server = EmbeddedNats(tmp_path, port=0, monitor_port=held_port)  # its client port picked (again if lost)
    with pytest.raises(QueueUnavailable) as refused:
        server.start()
    message = refused.value.message
    assert message.startswith("nats-server exited with code 1: ") and "[FTL]" in message, message
    assert f"127.0.0.1:{held_port}: bind: address already in use" in message, message
    assert "Starting nats-server" not in message and len(message) < 300, message


@pytest.mark.parametrize("how", ["--port", "GAMEAD_API__PORT"])
def test_up_with_api_port_0_is_refused_before_anything_starts(
        tmp_path: Path, how: str, closed_port: Callable[[], int]) -> None:
    """attack41b F2: ``gamead up --port 0`` started nats-server and an API that listened on a free port, then
    waited for it on port 0, "still starting" for up to 180 s, and failed. api.port 0 (a free one) is for
    ``gamead serve``; up says so before anything starts, exit 5, and leaves no data dir. Without the fix: no
    answer within this test's 60 s (the wait), a nats-server and an API started."""
    data = tmp_path / "stack"
    flags = ["--port", "0"] if how == "--port" else []
    variables = {} if how == "--port" else {"GAMEAD_API__PORT": "0"}
    result = run_gamead("up", "--workers", "0", "--data-dir", str(data), *flags, timeout=60,
                        env=clean_env(GAMEAD_EMBEDDED__NATS_PORT=str(closed_port()), **variables))
    assert result.returncode == 5, result.stderr[-2000:]
    assert result.stderr.strip().splitlines() == [
        "error: api.port 0 (any free port) is for gamead serve: gamead up waits on its API's port, prints it and "
        "restarts the API there — choose one with --port"]
    assert not data.exists()
