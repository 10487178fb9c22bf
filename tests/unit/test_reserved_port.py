"""A port a test names before its listener starts is held meanwhile (tests/ports.py, flake42).

Figure: freshG of 9cf5311a failed test_worker_metrics_before_nats with ``ConfigError: port 13702 … is taken by
another process``: the NATS port it had from ``free_port`` stayed free for anyone during the worker's 30 s wait for
NATS. Without the hold (a port from ``free_port`` alone) ``port_free`` says True through that wait: any other
test's ``free_port`` may pick it; held, it says False and a client is still refused there."""

from __future__ import annotations

import socket

import pytest

from gamead_core.proc import port_free
from tests.ports import ReservedPort


def test_a_held_port_is_offered_to_no_one_and_refuses_clients_until_released() -> None:
    with ReservedPort() as held:
        assert not port_free("127.0.0.1", held.port)  # another process's free_port passes it by
        with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", held.port), timeout=5):
            pass  # as with nothing there: a worker waiting for NATS keeps waiting
        assert port_free("127.0.0.1", held.release())
        with socket.socket() as listener:  # what the server started next does: it binds and listens
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", held.port))
            listener.listen()
