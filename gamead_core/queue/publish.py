"""Putting ads on the work stream: one subject per level, the ad id as ``Nats-Msg-Id`` (deduplication)."""

from __future__ import annotations

from dataclasses import dataclass

from nats.js import JetStreamContext

from gamead_core import names
from gamead_core.errors import QueueUnavailable
from gamead_core.queue.connection import nats_boundary
from gamead_core.telemetry.tracing import producer_span


@dataclass(frozen=True, slots=True)
class Published:
    """JetStream's ack of one ad: ``seq`` is the stream sequence of the stored message, which for a
    ``duplicate`` is the *first* message published with that message id (nats-server answers so)."""

    seq: int
    duplicate: bool


async def publish_ad(
    js: JetStreamContext, *, ad_id: str, level: int, payload: bytes, timeout: float, msg_id: str | None = None,
    link: str | None = None,
) -> bool:
    """Publish one ad to its level and wait for JetStream's ack. Returns True if it was a duplicate.

    ``msg_id`` (default: the ad id) is JetStream's deduplication key within ``queue.duplicate_window``.
    ``link``: the ``traceparent`` of an earlier life of the ad (a DLQ replay): the ``send`` span links to it.

    Raises :class:`QueueUnavailable` or :class:`QueueFull`; never returns before the ad is stored.
    """
    published = await publish_ad_acked(js, ad_id=ad_id, level=level, payload=payload, timeout=timeout,
                                       msg_id=msg_id, link=link)
    return published.duplicate


async def publish_ad_acked(
    js: JetStreamContext, *, ad_id: str, level: int, payload: bytes, timeout: float, msg_id: str | None = None,
    link: str | None = None,
) -> Published:
    """:func:`publish_ad`, answering the ack's sequence too. Same errors."""
    subject = names.level_subject(level)
    headers = {names.HDR_MSG_ID: msg_id or ad_id, names.HDR_AD_ID: ad_id}
    # the producer span adds ``traceparent`` to the headers when tracing is on
    with nats_boundary(), producer_span(subject, ad_id, headers,
                                        link={names.HDR_TRACEPARENT: link} if link else None):
        ack = await js.publish(subject, payload, timeout=timeout, headers=headers)
    if ack.stream != names.ADS_STREAM:
        raise QueueUnavailable(f"ad was stored by stream {ack.stream!r}, expected {names.ADS_STREAM}")
    return Published(int(ack.seq or 0), bool(ack.duplicate))
