"""What each status nats-server 2.15 may send on a pull request says to a whole-stream read's feed
(:func:`gamead_core.queue.pull_status.verdict`), every one written in its ``consumer.go`` and ``jetstream.go``.
pullfeed60: every ``409`` but "Message Size Exceeds MaxBytes" was the consumer's end, ``409 Batch Completed`` (a
request's batch delivered, bytes to spare) among them."""

from __future__ import annotations

import pytest

from gamead_core.queue.pull_status import ALIVE, BIG, FAILED, GONE, OVER, REFUSED, SIZE_EXCEEDED, said, verdict


@pytest.mark.parametrize(("status", "description", "pending", "kind"), [
    ("100", "Idle Heartbeat", None, ALIVE),
    ("503", "", None, REFUSED),
    ("409", "Exceeded MaxWaiting", None, REFUSED),
    ("404", "No Messages", None, OVER),
    ("408", "Request Timeout", "256", OVER),
    ("408", "Interest Expired", "12", OVER),
    ("408", "Requests Pending", None, OVER),
    ("409", "Batch Completed", "0", OVER),
    ("409", "Leadership Change", None, OVER),
    ("409", "Server Shutdown", "3", OVER),
    ("409", SIZE_EXCEEDED, "200", OVER),  # some delivered to it: the next one goes to the next request
    ("409", SIZE_EXCEEDED, "256", BIG),  # none delivered to it: the next one alone is bigger than a request
    ("409", SIZE_EXCEEDED, None, BIG),  # a server that does not say: asked alone (it is read, at a cost)
    ("409", "Consumer Deleted", None, GONE),
    ("409", "Consumer is push based", None, FAILED),
    ("409", "Exceeded MaxRequestBatch of 10", None, FAILED),
    ("409", "Exceeded MaxRequestExpires of 1s", None, FAILED),
    ("409", "Exceeded MaxRequestMaxBytes of 1000", None, FAILED),
    ("400", "Bad Request - invalid json", None, FAILED),
    ("412", "Required Api Level", None, FAILED),
    ("423", "Nats-Pin-Id mismatch", None, FAILED),
    ("418", "", None, FAILED),  # one nats-server does not send yet: the read says it, does not wait on it
])
def test_each_status_a_pull_request_may_get(status: str, description: str, pending: str | None, kind: str) -> None:
    assert verdict(status, description, pending, 256) == kind


def test_a_status_is_named_as_nats_server_wrote_it() -> None:
    assert said("409", "Exceeded MaxRequestBatch of 10") == "409 Exceeded MaxRequestBatch of 10"
    assert said("503", "") == "503"
