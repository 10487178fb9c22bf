"""port54: the harness's reading of a ``gamead up`` output that says a port it picked was lost
(:func:`tests.support.port_said_lost`), on the lines ``gamead up`` writes for each way of losing it."""

from __future__ import annotations

import pytest

from tests.support import port_said_lost


@pytest.mark.parametrize("said", [
    "error: port 4711 on 127.0.0.1 is taken by another process (address already in use; another `gamead up`?): "
    "the API cannot listen there — choose another with --port",
    "error: port 4711 is reserved by another `gamead up` (pid 12, data dir /x) for its embedded nats-server",
    "error: cannot listen on 127.0.0.1:4711 (api.port): port 4711 is taken by another process (address already in "
    "use); choose another api.port [api refused to start; log: /x/logs/api.log]",
    "! the nats-server's monitoring port 4711 is taken by another process: its /healthz moves to "
    "http://127.0.0.1:4712/healthz",
    "error: nats-server exited with code 1: [9] [FTL] Error listening on port: 127.0.0.1:4711, \"listen tcp\n"
    "127.0.0.1:4711: bind: address already in use\"",
    "error: port 4711 on 127.0.0.1 answers, but not from the nats-server just started (pid 9): another process",
])
def test_each_way_of_losing_the_port_is_read(said: str) -> None:
    assert port_said_lost(said, 4711)


def test_another_port_is_not_this_one() -> None:
    assert not port_said_lost("! metrics: port 47112 is taken: local-1 serves http://127.0.0.1:5/metrics instead", 4711)
    assert not port_said_lost("✓ API (pid 9) on http://127.0.0.1:4711", 4711)
