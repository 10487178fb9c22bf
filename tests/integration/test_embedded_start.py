"""Starting an embedded nats-server: it runs with the GOMAXPROCS it was given (``embedded.gomaxprocs``), read from
its own process (``/proc/PID/environ``, what its Go runtime reads at start), and on a port it picked itself even
when another process took the first pick before the server could bind it."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import httpx
import pytest

from gamead_core.embedded import (
    ANY_PORT,
    EmbeddedNats,
    free_port,
    nats_server_binary,
    start_on_picked_port,
    terminate,
)
from gamead_core.errors import ConfigError
from gamead_core.proc import port_owned_by
from tests.support import process_environ


def test_the_started_server_runs_with_the_gomaxprocs_of_its_setting(tmp_path: Path) -> None:
    server = EmbeddedNats(tmp_path / "nats", gomaxprocs=3).start()
    try:
        assert server.proc is not None
        assert process_environ(server.proc.pid)["GOMAXPROCS"] == "3"
    finally:
        server.stop()


def test_a_picked_port_another_process_took_before_the_server_bound_it_is_picked_again(tmp_path: Path) -> None:
    """The race every picked port runs (free when looked at, taken before the server binds): a listener of this
    test holds the first pick; the server starts on the next one and serves there."""
    with socket.create_server(("127.0.0.1", 0)) as taken:
        first = taken.getsockname()[1]
        picks = iter([first])
        server = EmbeddedNats(tmp_path / "nats", pick_port=lambda host: next(picks, None) or free_port(host))
        server.start()
        try:
            assert server.port != first and server.proc is not None
            assert port_owned_by(server.proc.pid, server.port)
            assert f"127.0.0.1:{first}: bind: address already in use" in server.log_path.read_text()
            with socket.create_connection(("127.0.0.1", server.port), timeout=10) as client:
                assert client.recv(4096).startswith(b"INFO ")  # a NATS server's greeting
        finally:
            server.stop()


def test_a_picked_monitoring_port_another_process_took_is_picked_again(tmp_path: Path) -> None:
    """ci53: the same race on the monitoring port (``monitor_port`` :data:`ANY_PORT`): nats-server exits 1 ("Can't
    start monitoring: … bind: address already in use") when another process binds the pick first. A listener of
    this test holds the first monitoring pick; the server starts anyway and its ``/healthz`` answers on the next.
    Before: ``monitor_port=free_port()`` ended the start on that exit (4 errors at setup in a fresh clone's run)."""
    with socket.create_server(("127.0.0.1", 0)) as taken:
        first = taken.getsockname()[1]
        picks = iter([first])  # the monitoring port is picked first
        server = EmbeddedNats(tmp_path / "nats", monitor_port=ANY_PORT,
                              pick_port=lambda host: next(picks, None) or free_port(host))
        server.start()
        try:
            assert server.monitor_port not in (first, ANY_PORT) and server.proc is not None
            assert f"127.0.0.1:{first}: bind: address already in use" in server.log_path.read_text()
            health = httpx.get(f"http://127.0.0.1:{server.monitor_port}/healthz", timeout=10)
            assert health.json() == {"status": "ok"}
        finally:
            server.stop()


def test_a_fixed_port_that_is_taken_is_refused_not_moved(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=f"port {port} on 127.0.0.1 is taken"):
            EmbeddedNats(tmp_path / "nats", port=port).start()


def test_the_harness_picks_again_for_its_other_servers_too(tmp_path: Path) -> None:
    """gamead_core.embedded.start_on_picked_port (valkey, the guarded nats-server of the scaler's tests): the same race,
    the same answer: a taken first pick, then a server of its own on the next."""
    conf, log = tmp_path / "nats.conf", tmp_path / "nats.log"

    def spawn(port: int) -> subprocess.Popen[bytes]:
        conf.write_text(f'listen: "127.0.0.1:{port}"\n')
        with open(log, "ab") as out:
            return subprocess.Popen([nats_server_binary(), "-c", str(conf)], stdout=out, stderr=subprocess.STDOUT)

    with socket.create_server(("127.0.0.1", 0)) as taken:
        first = taken.getsockname()[1]
        picks = iter([first])
        port, proc = start_on_picked_port(spawn, log, "nats-server", timeout=15.0,
                                          pick=lambda host: next(picks, None) or free_port(host))
        try:
            assert port != first and port_owned_by(proc.pid, port)
            assert f"127.0.0.1:{first}: bind: address already in use" in log.read_text()
        finally:
            terminate(proc, 10)
