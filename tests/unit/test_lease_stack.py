"""attack44 F4: a `gamead up`'s autoscaler lease names its stack (its data dir), so another stack sharing the NATS
can say whose workers the leader moves. The key is new: a lease of an older writer (none) reads as unknown, and a
value gamead did not write (not text, empty, overlong, control characters) as none, never an error. Without the fix:
7 of 8 fail (``Lease`` had no ``stack``: TypeError, AttributeError; the 8th tests the new pure module
alone); with it, 8 pass."""

from __future__ import annotations

import orjson
import pytest

from gamead_core.scaling.lease import Lease
from gamead_core.scaling.stacks import MAX_STACK_CHARS, holder_words, same_stack


def test_a_lease_keeps_its_stack_and_an_older_lease_has_none() -> None:
    lease = Lease("up-vm-7", 1.0, 2.0, 17.0, stack="/srv/a/.gamead")
    assert Lease.from_json(lease.to_json()) == lease
    old = orjson.dumps({"holder": "up-vm-7", "acquiredAt": 1.0, "renewedAt": 2.0, "expiresAt": 17.0, "acts": True})
    assert Lease.from_json(old) == Lease("up-vm-7", 1.0, 2.0, 17.0)  # an older writer's: stack None
    assert "stack" not in orjson.loads(Lease("api-h-1", 1.0, 2.0, 17.0).to_json())  # only a gamead up writes it


@pytest.mark.parametrize("junk", [["/a"], 7, "", "x" * (MAX_STACK_CHARS + 1), "/a\n/b", None])
def test_a_stack_gamead_did_not_write_reads_as_none(junk: object) -> None:
    raw = {"holder": "up-vm-7", "acquiredAt": 1.0, "renewedAt": 2.0, "expiresAt": 17.0, "stack": junk}
    lease = Lease.from_json(orjson.dumps(raw))
    assert lease is not None and lease.stack is None


def test_whose_stack_a_leader_is() -> None:
    assert same_stack("up-vm-7", "/a", "/a") is True
    assert same_stack("up-vm-7", "/a", "/b") is False
    assert same_stack("api-vm-7", None, "/b") is False  # a gamead serve leads: not this stack's
    assert same_stack("up-vm-7", None, "/b") is None  # an older gamead up's lease: not known
    assert same_stack("up-vm-7", "/a", None) is None  # asked of an API of no stack
    assert holder_words("up-my-host-25379", "/a") == "gamead up pid 25379 on host my-host, data dir /a"
    assert holder_words("api-h-7", None) == "gamead serve api-h-7"
