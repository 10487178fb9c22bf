"""The gamead error tree. Adapters translate third-party errors into these with ``raise … from exc``.

::

    GameadError
    ├── ConfigError              bad or contradictory configuration; the process must not start
    │   └── PartitionsChanged    queue.partitions differs from the work streams of a live system
    ├── QueueUnavailable         NATS / JetStream cannot be reached or did not answer in time
    │   ├── NatsUnreachable      no connection to NATS could be made within the retry time (exit code 3)
    │   ├── StorageFailed        JetStream could not store a write: disk, server or account storage full
    │   ├── TopologyMissing      a stream, consumer or bucket gamead needs does not exist (yet)
    │   │   └── WorkStreamMissing  no work stream takes an ad's subject: the publish reached no stream
    │   ├── NoStreamLeader       a stream that exists took no write: no leader answered (a cluster electing one)
    │   ├── MaybeQueued          an ad's publish got no answer in time: it may still be queued (being settled)
    │   └── OutboundFull         a write would put more than nats.max_pending_bytes on the way to NATS
    │   └── AuditUnavailable     an operator action's audit record could not be written: the action was not done
    ├── TopologyError            a stream, consumer or bucket exists with an incompatible config
    ├── TopologyChanged          the work streams were repartitioned under this running node: it takes no submit
    ├── QueueFull                the stream refused a publish because a limit was reached
    ├── NotFound                 an ad (or other record) does not exist
    ├── UnreadableRecord         an ad's stored record cannot be read (store.unreadable; also a ValueError)
    ├── Conflict                 a compare-and-set lost: someone else updated the record first
    ├── IdempotencyKeyReused     a caller's Idempotency-Key came back with a different ad
    ├── IdempotencyKeyExpired    a caller's Idempotency-Key came back after its first ad was no longer kept
    ├── ScalerError              the Kubernetes API refused or failed a scale call (gamead_core.scaling.kubernetes)
    │   ├── ScalerForbidden      401/403: credentials rejected, or RBAC lacks the verb on the resource
    │   ├── ScalerNotFound       404: no such Deployment (or namespace)
    │   ├── ScalerConflict       409: the Deployment changed since its scale was read; nothing done: read again
    │   └── ScalerUnavailable    timeout, refused connection, TLS failure, 429 or 5xx; retry later
    ├── TaskError                an analysis attempt failed
    │   ├── RetryableError       try again later (backoff); dead-lettered after worker.max_attempts
    │   │   └── TaskTimeout      the attempt ran longer than worker.task_timeout
    │   └── PermanentError       can never succeed: dead-lettered at once
    └── ApiClientError           a CLI-side failure talking to the gamead API
        └── ApiUnreachable       the API refused the connection or timed out
            └── NoAnswer         the request went out and no answer came: it may have been carried out

The HTTP layer maps each class to one status and one stable ``code`` (see ``gamead_core.api.errors``).
A class with a ``client_message`` shows clients that text instead of ``message``: the message of an error about
the connection may name servers and URLs, and a client never sees connection details (``message`` is for logs,
after ``gamead_core.redact.redact_url``).
"""

from __future__ import annotations

from typing import Any

from gamead_core.redact import redact_text


class GameadError(Exception):
    """Base of every error gamead raises on purpose. ``code`` is stable; ``message`` is for humans.

    Credentials in any URL quoted by ``message`` are masked (``nats://user:***@host``): an error may reach a
    log, a terminal or an API client, and none of them may see a password.
    """

    code: str = "internal_error"
    #: what an API client is told instead of ``message`` (None: ``message`` is safe to show)
    client_message: str | None = None

    def __init__(self, message: str, *, details: Any = None, code: str | None = None) -> None:
        message = redact_text(message)
        super().__init__(message)
        self.message = message
        self.details = details
        if code:  # set once, at creation: the code another system answered with (an API's ``worker_not_live``)
            self.code = code


class ConfigError(GameadError):
    """The configuration is invalid or contradictory; the process refuses to start."""

    code = "config_error"


class QueueUnavailable(GameadError):
    """NATS JetStream cannot be reached, or did not answer in time. Retrying later may succeed."""

    code = "queue_unavailable"
    client_message = "the queue is unavailable right now; retry after the time in Retry-After"


class NatsUnreachable(QueueUnavailable):
    """No connection to NATS could be made (``gamead_core.queue.connection.connect`` retried for its time)."""

    code = "queue_unavailable"


class StorageFailed(QueueUnavailable):
    """JetStream refused or could not complete a write because its storage is full or failing: the disk, the
    server's ``max_file_store``/``max_memory_store`` or the account's limit (nats-server error codes 10023,
    10002, 10047, 10028 and 10077 other than a stream limit). Freeing space lets writes succeed again."""

    code = "storage_failed"
    client_message = "the queue cannot store new data right now; retry after the time in Retry-After"


class TopologyMissing(QueueUnavailable):
    """A stream, consumer or KV bucket gamead needs does not exist (nats-server codes 10059, 10014 or a
    missing bucket). The API nodes recreate it within seconds (``gamead_core.queue.topology``)."""

    code = "topology_missing"
    client_message = "the queue is being repaired; retry after the time in Retry-After"


class WorkStreamMissing(TopologyMissing):
    """A publish of an ad reached no stream: the work stream of its partition (``GAMEAD_ADS``, ``GAMEAD_ADS_<n>``)
    does not exist (JetStream's no-responders answer; nothing was stored). ``details``: ``{"stream", "partition",
    "subject"}``. The message names the stream and what the operator runs; it names no server, so clients see it.
    """

    client_message = None


class NoStreamLeader(QueueUnavailable):
    """A write reached no stream although the last topology check found every stream gamead needs: JetStream's
    "no responders" from a stream with no leader right now (a cluster electing one after its leader died), not a
    missing stream (:mod:`gamead_core.api.leaderless`). ``details``: the stream, partition and subject when the
    write was an ad's message. Code ``queue_unavailable`` (retry); the message names no server."""

    client_message = None


class MaybeQueued(QueueUnavailable):
    """An ad may be stored though its submit failed, so it may still be analysed: its message got no ack in time
    (published again under its message id until answered, :mod:`gamead_core.unsettled`), or its record was (maybe)
    written and is not withdrawn yet (should the API stop first, the reaper queues it). 503 ``queue_unavailable``;
    ``details`` ``{"adId"}``: look it up rather than resend, or resend with an ``Idempotency-Key`` to get one ad,
    not two (:func:`maybe_queued`). Any other 503 of a submit means NATS took nothing of it."""

    client_message = None


def maybe_queued(ad_id: str, *, keyed: bool) -> MaybeQueued:
    """The :class:`MaybeQueued` of ``ad_id`` (``keyed``: submitted with an idempotency key)."""
    again = ("resend it with the same Idempotency-Key to get this ad, never a second one" if keyed else
             "resend it only with an Idempotency-Key, to get one ad, not two")
    return MaybeQueued(f"NATS did not answer in time: ad {ad_id} may still be queued and analysed (it is being "
                       f"settled); GET /ads/{ad_id} tells, or {again}", details={"adId": ad_id, "keyed": keyed})


class OutboundFull(QueueUnavailable):
    """A write was refused before it was sent: the bytes already waiting to be sent to NATS plus its own would be
    more than ``nats.max_pending_bytes`` (:func:`gamead_core.queue.liveness.unsent_bytes`). ``details``:
    ``{"unsentBytes", "writeBytes", "maxPendingBytes"}``; the message names no server, so clients see it."""

    client_message = None


class AuditUnavailable(QueueUnavailable):
    """The audit record of an operator action could not be written (NATS away, stream ``GAMEAD_AUDIT`` missing or
    full of storage), so the action was **not** done: the audit trail fails closed (``gamead_core.audit``)."""

    code = "audit_unavailable"
    client_message = ("nothing was done: the audit record of this action could not be written; retry after the "
                      "time in Retry-After")


class TopologyError(GameadError):
    """A stream, consumer or KV bucket exists with a config gamead cannot work with."""

    code = "topology_error"


class PartitionsChanged(ConfigError):
    """``queue.partitions`` differs from the work streams that exist and they still hold ads: starting would
    leave ads in a partition nobody reads (or split one ad's duplicate window over two streams). Drain the
    queue, then change the setting (README, "Partitions"); the process does not start."""

    code = "partitions_changed"

    def __init__(self, message: str, *, change: Any = None) -> None:
        super().__init__(message)
        #: the :class:`~gamead_core.queue.partitions.PartitionChange` refused (None: not known)
        self.change = change


class TopologyChanged(GameadError):
    """This running node's ``queue.partitions`` no longer fits the work streams (they were repartitioned while
    it ran): it would put ads into the wrong partition, so it takes no submit, replay or repair (HTTP 503)
    until it is restarted with the queue's setting. ``message``: the one line of
    :meth:`~gamead_core.queue.partitions.PartitionChange.stale_node`."""

    code = "topology_changed"


class QueueFull(GameadError):
    """The work stream is at its limit (messages or bytes) and refused the publish. From a publish of an ad
    (:mod:`gamead_core.queue.publish`) the message names the partition's stream, and ``details`` is
    ``{"stream", "partition", "subject"}``."""

    code = "queue_full"


class NotFound(GameadError):
    """The requested record does not exist."""

    code = "not_found"


class Conflict(GameadError):
    """A compare-and-set write lost to a concurrent writer."""

    code = "conflict"


class IdempotencyKeyReused(GameadError):
    """A caller sent an ``Idempotency-Key`` it had used before with a different ad (draft-ietf-httpapi-
    idempotency-key-header: a key is bound to one request payload). ``details``: the key and the first ad."""

    code = "idempotency_key_reused"

    @classmethod
    def of(cls, key: str, ad_id: str) -> IdempotencyKeyReused:
        """The error for ``key`` (as the client wrote it: a header's is shown decoded as UTF-8, never its
        latin-1 reading), first used for the ad ``ad_id``."""
        return cls(f"Idempotency-Key {key!r} was used for ad {ad_id} with a different body; use a new key for a "
                   "new ad, or resend exactly the first body to get the first ad back",
                   details={"idempotencyKey": key, "adId": ad_id})


class IdempotencyKeyExpired(GameadError):
    """A repeated ``Idempotency-Key`` JetStream still deduplicates whose first ad's record and message are gone
    (dropped by the full bucket, attack31a F2): nothing is queued (409). ``details``: the key, the first ad's id."""

    code = "idempotency_key_expired"


def key_kept_nowhere(key: str, ad_id: str) -> IdempotencyKeyExpired:
    """The :class:`IdempotencyKeyExpired` of a repeat of ``key`` whose first ad ``ad_id`` is kept nowhere."""
    return IdempotencyKeyExpired(f"the first ad of Idempotency-Key {key!r} (id {ad_id}) is no longer kept: its "
                                 "record was dropped (records.max_bytes) and it is not queued; send it again with a "
                                 "new key to analyse it again", details={"idempotencyKey": key, "adId": ad_id})


class TaskError(GameadError):
    """An analysis attempt failed. Unknown exceptions raised by an analysis count as retryable."""

    code = "task_failed"


class RetryableError(TaskError):
    """The attempt failed for a reason that may pass (a timeout, a dependency down): retry with backoff.

    ``delay`` (seconds) overrides the computed backoff when the failure knows better (e.g. Retry-After).
    """

    code = "retryable"

    def __init__(self, message: str, *, delay: float | None = None, details: Any = None) -> None:
        super().__init__(message, details=details)
        self.delay = delay


class TaskTimeout(RetryableError):
    """The attempt ran longer than ``worker.task_timeout`` and was cancelled: retried like any retryable error."""

    code = "task_timeout"


class PermanentError(TaskError):
    """The ad can never be analysed (e.g. content the analyser cannot accept): dead-letter it now."""

    code = "permanent"


class ApiClientError(GameadError):
    """The gamead API answered with an error, or answered something the client cannot use. ``status``: the HTTP
    status, if any; ``api_code``: the API's own stable code (``validation_failed``…), which becomes ``code``."""

    code = "api_error"

    def __init__(self, message: str, *, status: int | None = None, details: Any = None,
                 api_code: str | None = None) -> None:
        super().__init__(message, details=details, code=api_code)
        self.status = status


class ApiUnreachable(ApiClientError):
    """The gamead API refused the connection or did not answer in time."""

    code = "api_unreachable"


class NoAnswer(ApiUnreachable):
    """The request went out but no answer came back (a read timeout, the connection closed or reset while
    waiting): unlike a refused connection, the API may have carried it out — a submit may be queued. Resend
    only what is idempotent (an ``Idempotency-Key``: draft-ietf-httpapi-idempotency-key-header)."""


class ScalerError(GameadError):
    """The Kubernetes API refused or failed a scale call. ``status`` is the HTTP status, if any."""

    code = "scaler_error"

    def __init__(self, message: str, *, status: int | None = None, details: Any = None) -> None:
        super().__init__(message, details=details)
        self.status = status


class ScalerForbidden(ScalerError):
    """The credentials were rejected (401) or RBAC does not grant the verb on the resource (403)."""

    code = "scaler_forbidden"


class ScalerNotFound(ScalerError):
    """The Deployment (or its namespace) does not exist."""
    code = "scaler_not_found"


class ScalerConflict(ScalerError):
    """The write was conditional on the ``resourceVersion`` read, and the Deployment has changed since (409
    Conflict): nothing was applied, for sure. Read the scale again and retry. ``replicas_read``: the count the write
    was decided on; ``replicas_now``: the count read after the 409 (None: not read)."""

    code = "scaler_conflict"

    def __init__(self, message: str, *, status: int | None = None, details: Any = None,
                 replicas_read: int | None = None, replicas_now: int | None = None) -> None:
        super().__init__(message, status=status, details=details)
        self.replicas_read = replicas_read
        self.replicas_now = replicas_now


class ScalerUnavailable(ScalerError):
    """The API server did not answer in time, refused the connection, answered 429/5xx, or answered something
    that is not JSON. Retry later. ``sent``: the request went out and what came back does not say whether it was
    carried out (a read timeout, a connection reset, a 5xx such as ``etcdserver: request timed out``, an answer
    that is not JSON), so a write may have landed all the same: read the object back before counting it as not
    done. ``answer``: what came back, in words for a decision's reason (``no answer to the call``, ``HTTP 500 to
    the call``…)."""

    code = "scaler_unavailable"

    def __init__(self, message: str, *, status: int | None = None, details: Any = None, sent: bool = False,
                 answer: str = "no answer to the call") -> None:
        super().__init__(message, status=status, details=details)
        self.sent = sent
        self.answer = answer


def error_text(exc: BaseException, *, limit: int | None = None) -> str:
    """One line about ``exc`` for a log, a status field or a dashboard: a :class:`GameadError`'s ``message``,
    else ``str(exc)``, else the class name (``TimeoutError()`` says nothing by itself); whitespace collapsed to
    single spaces, credentials in URLs masked, cut to ``limit`` characters if given."""
    text = " ".join((getattr(exc, "message", None) or str(exc) or type(exc).__name__).split())
    text = redact_text(text) or type(exc).__name__
    return text if limit is None or len(text) <= limit else text[: max(0, limit - 1)] + "…"
