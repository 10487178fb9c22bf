"""A write JetStream is storing for another request right now (attack38a F3): its own error, not an outage.

A publish whose ``Nats-Msg-Id`` a replicated stream is still storing for another publish is answered ``duplicate
message id is in process`` (nats-server error 10158, ``JSStreamDuplicateMessageConflict``, HTTP 409 in its own
table): this write stored nothing, the other is under way. It was answered 503 ``queue_unavailable`` ("NATS
away"), which ``gamead submit`` took for the store refusing every ad (1-4 of 10 concurrent ``POST /ads`` with one
``Idempotency-Key`` in 5 of 30 rounds, on a healthy 3-node cluster). From ``POST /ads`` (or one keyed ad of a
batch) it is a request whose key is still in process: 409 Conflict with ``Retry-After``
(draft-ietf-httpapi-idempotency-key-header §2.7); sent again after it, it gets the first request's answer."""

from __future__ import annotations

from gamead_core.errors import GameadError

#: nats-server's ``JSStreamDuplicateMessageConflict``: "duplicate message id is in process"
JS_DUPLICATE_IN_PROCESS = 10158


class IdempotencyKeyInProcess(GameadError):
    """JetStream is storing a message with the same ``Nats-Msg-Id`` for another request (error 10158): 409
    ``idempotency_key_in_process`` with ``Retry-After`` :attr:`retry_after`. ``details`` (:func:`key_in_process`):
    ``{"idempotencyKey", "retryAfter"}``. Elsewhere (a DLQ replay, a repair, whose message ids are their own) it
    means another caller stores the same message: try again. Not a :class:`~gamead_core.errors.QueueUnavailable`:
    nothing is wrong with NATS (the storage probe and the job runner's "wait for NATS" do not see it)."""

    code = "idempotency_key_in_process"
    #: seconds before sending again (``Retry-After``, ``details.retryAfter``): the other write is one JetStream
    #: round trip, a replicated one a few milliseconds
    retry_after = 1


def key_in_process(key: str) -> IdempotencyKeyInProcess:
    """The error of a request with Idempotency-Key ``key`` (as the client wrote it) while another request with it
    is being stored. Pure."""
    return IdempotencyKeyInProcess(
        f"a request with Idempotency-Key {key!r} is still in process: send this one again after Retry-After "
        "(it then gets that request's answer; nothing is queued twice)",
        details={"idempotencyKey": key, "retryAfter": IdempotencyKeyInProcess.retry_after})
