"""Pure parts of attack31b F6 and F8: which ``X-Forwarded-For`` entry is the client (only an address), and the
node's bound on refusal records with its one summary per window. The live checks are in
``tests/integration/test_audit_flood.py``."""

from __future__ import annotations

import pytest

from gamead_core.api.forwarded import Trusted, entry_address, forwarded_client
from gamead_core.audit.refusal_cap import Caller, RefusalCap

LOCAL = Trusted("127.0.0.1,::1")


@pytest.mark.parametrize(("header", "client"), [
    ("203.0.113.9", ("203.0.113.9", 0)),
    ("203.0.113.9:4711", ("203.0.113.9", 4711)),
    ("[2001:db8::1]:4711", ("2001:db8::1", 4711)),
    ("[2001:db8::1]", ("2001:db8::1", 0)),
    ("fe80::1%eth0", ("fe80::1", 0)),  # the zone is the proxy host's interface
    ("::FFFF:192.0.2.1", ("192.0.2.1", 0)),
    ("198.51.100.1, 203.0.113.9", ("203.0.113.9", 0)),  # the right-most one not a trusted proxy
    ("203.0.113.9, 127.0.0.1, ::1", ("203.0.113.9", 0)),
    ("127.0.0.1, ::1", ("127.0.0.1", 0)),  # every one a trusted proxy: the left-most
    ("forged, 203.0.113.9", ("203.0.113.9", 0)),  # never reached: the client is found first
    ("203.0.113.9, unknown, 127.0.0.1", ("127.0.0.1", 0)),  # the walk ends at a non-address: the proxy that wrote it
    ("203.0.113.9, unknown", None),  # ... the peer itself
    ("forged-admin.example", None),
    ("A" * 12000, None),
    ("\u009b31m\u2028 x", None),
    ("", None),
    ("[192.0.2.1]", None),
    ("192.0.2.1:99999", None),
    ("[2001:db8::1]x", None),
    ("fe80::1%" + "z" * 200, None),
])
def test_only_an_address_is_the_client(header: str, client: tuple[str, int] | None) -> None:
    assert forwarded_client(header, LOCAL) == client


def test_a_client_is_a_short_address_whatever_the_header() -> None:
    for entry in ("fe80::1%eth0", "[::ffff:10.0.0.1]:1", "2001:0db8:0000:0000:0000:0000:0000:0001"):
        found = entry_address(entry)
        assert found is not None and len(str(found[0])) <= 39


def test_the_trusted_peers_are_addresses_networks_anyone_or_literals() -> None:
    trusted = Trusted("10.0.0.0/24, 192.0.2.7, unix:/run/gamead.sock")
    assert trusted.peer("10.0.0.200") and trusted.peer("192.0.2.7") and trusted.peer("unix:/run/gamead.sock")
    assert not trusted.peer("10.0.1.1") and not trusted.peer("127.0.0.1")
    assert Trusted("*").peer("198.51.100.1")
    assert forwarded_client("198.51.100.1, 10.0.0.5", trusted) == ("198.51.100.1", 0)


def test_the_node_records_at_most_its_bound_a_window_and_one_summary_counts_the_rest() -> None:
    cap = RefusalCap(3, 60.0)
    callers = [Caller("anonymous", None, f"127.1.0.{i}") for i in range(10)]
    assert [cap.allow(c, "method_not_allowed", 1.0 + i) for i, c in enumerate(callers)] == [True] * 3 + [False] * 7
    assert cap.due_in(10.0) == pytest.approx(51.0)
    assert cap.summary(60.0) is None  # the window is not over
    assert not cap.allow(callers[0], "forbidden", 60.5, count=4)  # its caller's 3 unrecorded ones come with it
    said = cap.summary(61.0)
    assert said is not None and (said.count, said.by_code, said.callers) == (11, {"method_not_allowed": 7,
                                                                                  "forbidden": 4}, 8)
    assert said.top == callers[0] and said.top_count == 4 and said.seconds == pytest.approx(57.0)
    assert "11 refusals not recorded one by one" in said.message() and "at 127.1.0.0 (4)" in said.message()
    assert cap.summary(62.0) is None and cap.due_in(62.0) is None
    assert cap.allow(callers[1], "forbidden", 62.0)  # a new window


def test_a_window_does_not_begin_before_the_previous_ones_summary_is_written() -> None:
    cap = RefusalCap(1, 10.0)
    caller = Caller("anonymous", None, "127.0.0.1")
    assert cap.allow(caller, "x", 0.0) and not cap.allow(caller, "x", 1.0)
    assert not cap.allow(caller, "x", 15.0)  # over, but its summary not taken: counted there
    said = cap.summary(15.0)
    assert said is not None and said.count == 2
    assert cap.allow(caller, "x", 15.0)
