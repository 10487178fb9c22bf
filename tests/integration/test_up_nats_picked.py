"""port54: ``gamead up`` with ``embedded.nats_port`` 0 (or ``embedded.nats_monitor_port`` 0) asked for *any*
port; the port ``up`` picks is free only when it is looked at, and another process of this shared machine can
take it before nats-server binds it. ``up`` must not fail for a port it chose: it picks again. The start is
:func:`gamead_cli.commands.up_nats.start_nats` (what ``gamead up`` runs), with a real supervisor, real port
claims and a real nats-server; the test's ``pick`` takes the port right after the pick, as that other process
would."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from gamead_cli.commands.up_liveness import MONITOR_PURPOSE
from gamead_cli.commands.up_nats import CLIENT_PURPOSE, start_nats
from gamead_core.embedded import ANY_PORT, EmbeddedNats
from gamead_core.port_claims import PortClaims
from gamead_core.proc import port_owned_by
from gamead_core.supervisor import Supervisor


@pytest.fixture
def held() -> Iterator[ExitStack]:
    """The listeners this test holds (as another process would), closed at its end."""
    with ExitStack() as stack:
        yield stack


def _taking(claims: PortClaims, held: ExitStack, purpose: str, taken: list[int]) -> Callable[[str, str], int]:
    """``claims.pick``, whose first pick for ``purpose`` a listener of this test takes at once (added to ``taken``)."""
    def pick(host: str, why: str) -> int:
        port = claims.pick(host, why)
        if why == purpose and not taken:
            taken.append(port)
            held.enter_context(socket.create_server((host, port)))
        return port

    return pick


def test_a_client_port_up_picked_and_another_process_took_is_picked_again(tmp_path: Path, held: ExitStack) -> None:
    """Before: ``up`` refused the port it had picked itself: ConfigError "port P on 127.0.0.1 is taken by another
    process …: set embedded.nats_port to a free port (0 = any free port)" (exit 5), though it was 0 already."""
    claims = PortClaims(tmp_path, directory=tmp_path / "claims")
    sup, taken = Supervisor(), []
    embedded = EmbeddedNats(tmp_path / "nats", port=0, monitor_port=ANY_PORT)
    try:
        child = start_nats(sup, embedded, claims, dict(os.environ), pick=_taking(claims, held, CLIENT_PURPOSE, taken))
        assert taken and embedded.port != taken[0]
        assert child.pid is not None and port_owned_by(child.pid, embedded.port)
        with socket.create_connection(("127.0.0.1", embedded.port), timeout=10) as client:
            assert client.recv(4096).startswith(b"INFO ")  # a NATS server's greeting
        assert embedded.port in claims.held and taken[0] not in claims.held  # the lost pick is given back
    finally:
        sup.stop_all(10)
        claims.release_all()


def test_a_monitoring_port_up_picked_and_another_process_took_moves(tmp_path: Path, held: ExitStack) -> None:
    """The same race on the monitoring port ``up`` picked: nats-server would exit 1 ("Can't start monitoring: …
    bind: address already in use"); it moves to a new pick, its /healthz answers there, and the lost pick's claim
    is given back (before: kept for the stack's life, a port no other stack could pick)."""
    claims = PortClaims(tmp_path, directory=tmp_path / "claims")
    sup, taken = Supervisor(), []
    embedded = EmbeddedNats(tmp_path / "nats", port=0, monitor_port=ANY_PORT)
    try:
        start_nats(sup, embedded, claims, dict(os.environ), pick=_taking(claims, held, MONITOR_PURPOSE, taken))
        assert taken and embedded.monitor_port not in (taken[0], ANY_PORT)
        health = httpx.get(f"http://127.0.0.1:{embedded.monitor_port}/healthz", timeout=10)
        assert health.json() == {"status": "ok"}
        assert embedded.monitor_port in claims.held and taken[0] not in claims.held
    finally:
        sup.stop_all(10)
        claims.release_all()
