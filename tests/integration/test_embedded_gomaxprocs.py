"""A started embedded nats-server runs with the GOMAXPROCS it was given (``embedded.gomaxprocs``), read from its
own process (``/proc/PID/environ``, what its Go runtime reads at start)."""

from __future__ import annotations

from pathlib import Path

from gamead_core.embedded import EmbeddedNats
from tests.support import process_environ


def test_the_started_server_runs_with_the_gomaxprocs_of_its_setting(tmp_path: Path) -> None:
    server = EmbeddedNats(tmp_path / "nats", gomaxprocs=3).start()
    try:
        assert server.proc is not None
        assert process_environ(server.proc.pid)["GOMAXPROCS"] == "3"
    finally:
        server.stop()
