"""Issue 14 leftovers (C3.5, C3.6), the pure parts: a refused publish names its work stream; a batch is checked
against ``nats.max_pending_bytes`` with its own bytes counted."""

from __future__ import annotations

import pytest
from nats.js.errors import NoStreamResponseError

from gamead_core import names
from gamead_core.api.routes_batch import check_room
from gamead_core.errors import (
    OutboundFull,
    QueueFull,
    QueueUnavailable,
    TopologyMissing,
    WorkStreamMissing,
)
from gamead_core.queue.publish import not_stored
from gamead_core.queue.connection import translate
from gamead_core.queue.publish import named


def test_queue_full_names_the_partitions_stream() -> None:
    out = named(QueueFull("the stream is full: maximum messages exceeded"), 2, "gamead.ads.p2.3")
    assert isinstance(out, QueueFull) and out.code == "queue_full"
    assert out.message.startswith(f"work stream {names.work_stream(2)} (partition 2) is full: maximum messages "
                                  "exceeded;")
    assert out.details == {"stream": names.work_stream(2), "partition": 2, "subject": "gamead.ads.p2.3"}


def test_no_stream_taking_the_subject_is_topology_missing_with_what_to_run() -> None:
    no_stream = translate(NoStreamResponseError())
    no_stream.__cause__ = NoStreamResponseError()
    assert isinstance(no_stream, TopologyMissing)  # any write no stream took (a work stream, a KV bucket)
    out = named(no_stream, 1, "gamead.ads.p1.2")
    assert isinstance(out, WorkStreamMissing) and isinstance(out, TopologyMissing)
    assert out.code == "topology_missing" and out.client_message is None  # clients see the stream and the fix
    assert f"work stream {names.work_stream(1)} does not exist" in out.message
    assert "gamead doctor --repair" in out.message
    assert not_stored(out)  # nothing was stored: the submit takes its record back


def test_other_errors_pass_unchanged() -> None:
    timeout = QueueUnavailable("NATS did not answer in time")
    assert named(timeout, 0, "gamead.ads.3") is timeout


@pytest.mark.parametrize(("unsent", "body", "limit", "refused", "alone"), [
    (0, 1_000, 65_536, False, False),
    (0, 32_768, 65_536, False, False),  # exactly at the bound: 2 × 32 KiB
    (0, 32_769, 65_536, True, True),  # over it by itself: only parts can pass
    (60_000, 1_000, 65_536, False, False),
    (64_000, 1_000, 65_536, True, False),  # what waits + this batch: retry later
])
def test_a_batch_counts_its_own_bytes(unsent: int, body: int, limit: int, refused: bool, alone: bool) -> None:
    if not refused:
        check_room(unsent, body, limit)
        return
    with pytest.raises(OutboundFull) as caught:
        check_room(unsent, body, limit)
    err = caught.value
    assert err.code == "queue_unavailable" and err.client_message is None
    assert err.details == {"unsentBytes": unsent, "writeBytes": 2 * body, "maxPendingBytes": limit}
    assert ("smaller parts" in err.message) is alone and ("Retry-After" in err.message) is not alone
