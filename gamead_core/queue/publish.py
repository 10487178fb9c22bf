"""Putting ads on the work stream: one subject per level, the ad id as ``Nats-Msg-Id`` (deduplication).

With ``queue.partitions`` > 1 every publish of an ad goes to its partition's stream
(:func:`gamead_core.queue.partitions.partition_of`: the same for every publish of one ad, so JetStream's duplicate
window, which is per stream, sees a repeat); callers pass ``partitions`` (the setting), 1 by default."""

from __future__ import annotations

from typing import NamedTuple

import nats.errors
import nats.js.errors
from nats.js import JetStreamContext
from nats.js.errors import NoStreamResponseError

from gamead_core import names
from gamead_core.errors import GameadError, QueueFull, QueueUnavailable, StorageFailed, TopologyMissing, WorkStreamMissing
from gamead_core.queue.connection import nats_boundary, translate
from gamead_core.queue.acks import Ack, publish_acked, publish_many
from gamead_core.queue.partitions import partition_of
from gamead_core.telemetry.tracing import producer_span


class Published(NamedTuple):
    """JetStream's ack of one ad: ``seq`` is the stream sequence of the stored message, which for a
    ``duplicate`` is the *first* message published with that message id (nats-server answers so). A named
    tuple: one per ad of a batch."""

    seq: int
    duplicate: bool


async def publish_ad(
    js: JetStreamContext, *, ad_id: str, level: int, payload: bytes, timeout: float, msg_id: str | None = None,
    link: str | None = None, partitions: int = 1,
) -> bool:
    """Publish one ad to its level and wait for JetStream's ack. Returns True if it was a duplicate.

    ``msg_id`` (default: the ad id) is JetStream's deduplication key within ``queue.duplicate_window``.
    ``link``: the ``traceparent`` of an earlier life of the ad (a DLQ replay): the ``send`` span links to it.
    ``partitions``: ``queue.partitions``; the ad goes to the stream of its partition.

    Raises :class:`QueueUnavailable` or :class:`QueueFull`; never returns before the ad is stored.
    """
    published = await publish_ad_acked(js, ad_id=ad_id, level=level, payload=payload, timeout=timeout,
                                       msg_id=msg_id, link=link, partitions=partitions)
    return published.duplicate


async def publish_ad_acked(
    js: JetStreamContext, *, ad_id: str, level: int, payload: bytes, timeout: float, msg_id: str | None = None,
    link: str | None = None, partitions: int = 1, record_revision: int | None = None,
) -> Published:
    """:func:`publish_ad`, answering the ack's sequence too (a sequence of the ad's partition stream). Same
    errors. ``record_revision``: the KV revision of the record ``payload`` is, when the caller created that
    record before publishing (the un-keyed submit path); sent as ``Gamead-Record-Revision`` so the worker's
    first delivery need not read the record back.

    The ack is awaited on one reply subscription per connection, its deadline kept without a timer of its own
    (:func:`gamead_core.queue.acks.publish_acked`)."""
    partition = partition_of(ad_id, partitions)
    subject = names.level_subject(level, partition)
    headers = {names.HDR_MSG_ID: msg_id or ad_id, names.HDR_AD_ID: ad_id}
    if record_revision is not None:
        headers[names.HDR_RECORD_REVISION] = str(record_revision)
    # the producer span adds ``traceparent`` to the headers when tracing is on
    try:
        with nats_boundary(), producer_span(subject, ad_id, headers,
                                            link={names.HDR_TRACEPARENT: link} if link else None):
            # a fresh ad's three headers, none added by the span: their lines written here (hpub.send)
            lines = id_lines(ad_id, record_revision) if len(headers) == 3 and msg_id is None else None
            # js.publish(timeout=…) without its timer per message (gamead_core.queue.acks): same ack, same errors
            ack = await (await publish_acked(js, subject, payload, headers=headers, timeout=timeout, lines=lines))
    except (QueueFull, QueueUnavailable) as exc:
        raise named(exc, partition, subject) from exc.__cause__
    if ack.stream != names.work_stream(partition):
        raise QueueUnavailable(f"ad was stored by stream {ack.stream!r}, expected {names.work_stream(partition)}")
    return Published(int(ack.seq or 0), bool(ack.duplicate))


def id_lines(ad_id: str, revision: int | None) -> str | None:
    """The header lines of an ad's message published with its record's ``revision`` (``Nats-Msg-Id`` and
    ``Gamead-Ad-Id`` both ``ad_id``, then ``Gamead-Record-Revision``), as :func:`~gamead_core.queue.hpub.plain_lines`
    writes them, for an id of ASCII letters and digits (every ad id); None for another (then hpub checks them). Pure:
    an f-string, a fifth of the general check's instructions (cpuapi48)."""
    if revision is None or not (ad_id.isascii() and ad_id.isalnum()):
        return None
    return f"{_MSG_ID}: {ad_id}\r\n{_AD_ID}: {ad_id}\r\n{_REVISION}: {revision}\r\n"


def named(exc: Exception, partition: int, subject: str) -> Exception:
    """A refused publish of an ad to ``subject`` (the work stream of ``partition``), saying which stream refused:
    :class:`QueueFull` naming the full stream, :class:`WorkStreamMissing` (503 ``topology_missing``) for a
    publish no stream took (JetStream's no-responders answer, :class:`NoStreamResponseError`, is otherwise
    ``queue_unavailable``), with what to run. Any other error is returned as it is. Pure."""
    stream = names.work_stream(partition)
    details = {"stream": stream, "partition": partition, "subject": subject}
    if isinstance(exc, QueueFull):
        out: Exception = QueueFull(
            f"work stream {stream} (partition {partition}) is full: {exc.message.removeprefix('the stream is full: ')}; "
            "it takes ads again as workers drain it (its limits: queue.max_msgs, queue.max_bytes, split over "
            "queue.partitions, as the stream has them: /readyz names any that differ from this node's)",
            details=details)
    elif isinstance(exc, QueueUnavailable) and isinstance(exc.__cause__, NoStreamResponseError):
        out = WorkStreamMissing(
            f"work stream {stream} does not exist: no stream takes {subject}; an API node (gamead serve, or the "
            "one gamead up runs) creates it within seconds, else run `gamead doctor --repair`", details=details)
    else:
        return exc
    out.__cause__ = exc.__cause__
    return out


def _translated(exc: BaseException) -> Exception:
    """:func:`translate`, chained to ``exc`` as ``raise … from exc`` would (the submit path reads the cause to
    tell a refused publish from an ambiguous one: :func:`not_stored`)."""
    out = translate(exc)
    if out is not exc:
        out.__cause__ = exc
    return out


_MSG_ID, _AD_ID, _REVISION = names.HDR_MSG_ID, names.HDR_AD_ID, names.HDR_RECORD_REVISION


class Outgoing(NamedTuple):
    """One ad to publish with :func:`publish_ads`: its id (the ``Nats-Msg-Id``), level and encoded record;
    ``revision``: the KV revision of that record if it was created first (``Gamead-Record-Revision``, see
    :func:`publish_ad_acked`). A named tuple: made once per ad of a batch (half the cost of a frozen dataclass)."""

    ad_id: str
    level: int
    payload: bytes
    revision: int | None = None


async def publish_ads(js: JetStreamContext, ads: list[Outgoing], *, timeout: float,
                      partitions: int = 1) -> list[Published | Exception]:
    """Publish ``ads`` pipelined: every message is written before any ack is awaited, and the acks are gathered
    with one deadline of ``timeout`` seconds for all (:func:`gamead_core.queue.acks.publish_many`: one reply
    subscription, one waiter and one timer per call, nothing per message). One result per ad, in order: its
    :class:`Published` once JetStream stored it, else the gamead error it met (:class:`QueueUnavailable` "did not answer in time" for an
    ack that did not come, :class:`QueueFull`, …). Never raises for one ad; an ad without a ``Published`` was
    perhaps stored anyway (an ack lost on the way): its id is its deduplication key, so a retry is safe.

    An error ack (the stream full: :class:`QueueFull`) is that ad's result at once; nats-py's ``publish_async``,
    used before, lost it and reported a timeout ``timeout`` seconds later.
    ``partitions``: ``queue.partitions``; each ad goes to the stream of its partition.
    """
    subjects: dict[tuple[int, int], str] = {}  # (level, partition) → subject, made once per batch
    parts = [partition_of(ad.ad_id, partitions) for ad in ads] if partitions != 1 else [0] * len(ads)
    messages = []
    for ad, part in zip(ads, parts):
        subject = subjects.get((ad.level, part))
        if subject is None:
            subject = subjects[ad.level, part] = names.level_subject(ad.level, part)
        ad_id = ad.ad_id
        messages.append((subject, ad.payload, {_MSG_ID: ad_id, _AD_ID: ad_id} if ad.revision is None else
                         {_MSG_ID: ad_id, _AD_ID: ad_id, _REVISION: str(ad.revision)}))
    # not nats-py's publish_async: it loses error acks (queue full) to a timeout (gamead_core.queue.acks)
    answers = await publish_many(js, messages, timeout=timeout)
    streams = [names.work_stream(p) for p in range(partitions)]
    results: list[Published | Exception] = []
    for ad, part, answer in zip(ads, parts, answers, strict=True):
        if not isinstance(answer, Ack):
            results.append(named(_translated(answer), part, names.level_subject(ad.level, part)))
        elif answer.stream != streams[part]:
            results.append(QueueUnavailable(f"ad was stored by stream {answer.stream!r}, expected {streams[part]}"))
        else:
            results.append(Published(answer.seq, answer.duplicate))
    return results


#: What a failed publish raised when JetStream (or the client) certainly did not store the message: an error ack
#: (stream full, storage failed …), no stream listening, or a connection that could not send it. A timeout is
#: not among them: the message may be stored, its ack lost.
_NOT_SENT = (nats.js.errors.APIError, nats.js.errors.NoStreamResponseError, nats.errors.NoRespondersError,
             nats.errors.ConnectionClosedError, nats.errors.ConnectionReconnectingError,
             nats.errors.ConnectionDrainingError, nats.errors.NoServersError, nats.errors.OutboundBufferLimitError,
             nats.errors.MaxPayloadError)


def not_stored(exc: GameadError) -> bool:
    """True when the failed publish that raised ``exc`` (a gamead error translated from nats-py's, see
    :func:`gamead_core.queue.connection.translate`) certainly left no message: :class:`QueueFull`,
    :class:`StorageFailed`, :class:`TopologyMissing`, or a translated error whose cause is in ``_NOT_SENT``.
    False for a timeout (ambiguous) or a message stored by an unexpected stream."""
    if isinstance(exc, (QueueFull, StorageFailed, TopologyMissing)):
        return True
    return isinstance(exc.__cause__, _NOT_SENT)
