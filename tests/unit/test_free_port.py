"""Ports ``gamead up`` and the tests choose to listen on lie outside the kernel's ephemeral range, so no outgoing
connection (nor a client reconnecting to the port itself: a TCP self-connect) is given one while its process is
down and waiting for its restart (session 16: a CI run's restarted worker could never listen again)."""

from __future__ import annotations

import socket
from pathlib import Path

from gamead_core.embedded import EPHEMERAL_DEFAULT, PICK_FROM, ephemeral_range, free_port, listen_candidates
from gamead_core.proc import port_free


def test_the_candidates_are_the_ports_from_10000_outside_the_ephemeral_range() -> None:
    assert listen_candidates((32768, 60999)) == [range(10000, 32768), range(61000, 65536)]
    assert listen_candidates((1024, 65535)) == []  # nothing outside: the kernel picks
    assert listen_candidates((5000, 20000)) == [range(20001, 65536)]
    assert listen_candidates((40000, 65535)) == [range(10000, 40000)]


def test_the_ephemeral_range_is_the_kernels_or_linuxs_default(tmp_path: Path) -> None:
    path = tmp_path / "ip_local_port_range"
    path.write_text("20000\t45000\n")
    assert ephemeral_range(path) == (20000, 45000)
    path.write_text("garbage")
    assert ephemeral_range(path) == EPHEMERAL_DEFAULT
    assert ephemeral_range(tmp_path / "absent") == EPHEMERAL_DEFAULT


def test_a_free_port_is_outside_the_ephemeral_range_and_free() -> None:
    low, high = ephemeral_range()
    spans = listen_candidates((low, high))
    for _ in range(20):
        port = free_port()
        assert port_free("127.0.0.1", port)
        if spans:
            assert PICK_FROM <= port and not low <= port <= high, (port, low, high)
    with socket.socket() as sock:  # and one can listen there
        sock.bind(("127.0.0.1", free_port()))
        sock.listen()
