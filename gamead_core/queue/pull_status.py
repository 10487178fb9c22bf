"""What nats-server's status on a pull request's reply subject says to a whole-stream read's feed
(:mod:`gamead_core.queue.pull_feed`), for every status a pull request may get (nats-server 2.15's ``consumer.go``
and ``jetstream.go``; ADR-13, ADR-37): the request is alive, refused for now, over (ask again), over for a message
bigger than it, or the read cannot go on (its consumer deleted, or a request nats-server will never serve).

Before (pullfeed60) every ``409`` but "Message Size Exceeds MaxBytes" was taken for the consumer's end, and so was
``409 Batch Completed``, nats-server's end of a request whose ``batch`` was delivered with bytes to spare: a read
whose other request had been lost ended after 256 of 600 messages, ScanIncomplete "then 5 s without one", 0.1 s in.
"""

from __future__ import annotations

ALIVE = "alive"  #: ``100`` idle heartbeat: the request waits on the server
REFUSED = "refused"  #: ``503`` no responders, ``409 Exceeded MaxWaiting``: asked again after a pause
OVER = "over"  #: the request is done (``404``, ``408``, ``409 Batch Completed`` …): ask again
BIG = "big"  #: nothing delivered to it, the next message is bigger than its ``max_bytes``: ask for that one alone
GONE = "gone"  #: ``409 Consumer Deleted``: the read has ended
FAILED = "failed"  #: a request nats-server will never serve (``400 Bad Request``, ``409 Exceeded MaxRequestBatch`` …)

SIZE_EXCEEDED = "Message Size Exceeds MaxBytes"
PENDING_MSGS = "Nats-Pending-Messages"  #: header of a request's end: how many of its ``batch`` were not delivered
#: a ``409``'s descriptions that end one request only (the consumer is there: a leader elected elsewhere, a server
#: stopping, the batch delivered with bytes to spare)
_REQUEST_ENDS = frozenset({"Batch Completed", "Leadership Change", "Server Shutdown"})


def verdict(status: str, description: str, pending_msgs: str | None, batch: int) -> str:
    """What a ``status`` (``Status`` header, ``"100"``…) with ``description`` and ``pending_msgs`` (the
    ``Nats-Pending-Messages`` header, None if absent) says of a request for ``batch`` messages: one of
    :data:`ALIVE`, :data:`REFUSED`, :data:`OVER`, :data:`BIG`, :data:`GONE`, :data:`FAILED` (pure)."""
    if status == "100":
        return ALIVE
    if status == "503" or (status == "409" and description == "Exceeded MaxWaiting"):
        return REFUSED
    if status in ("404", "408"):  # no messages (no-wait), request timeout, interest expired, requests pending
        return OVER
    if status == "409" and description == SIZE_EXCEEDED:  # nothing delivered to it: the next one alone is bigger
        return BIG if pending_msgs is None or pending_msgs == str(batch) else OVER
    if status == "409" and description in _REQUEST_ENDS:
        return OVER
    if status == "409" and description == "Consumer Deleted":
        return GONE
    return FAILED


def said(status: str, description: str) -> str:
    """``"409 Consumer Deleted"``: a status as nats-server wrote it, for an error message (pure)."""
    return f"{status} {description}".strip()
