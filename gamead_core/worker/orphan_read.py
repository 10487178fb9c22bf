"""Reading the records' stream for the creates of dead APIs (:mod:`gamead_core.worker.orphans`), and finding the
deaths no lease holder saw (:func:`unseen`).

A death is seen when a reaper lists the registry with the API alive, then without it. A death no lease holder saw
(the registry lost with a restarted nats-server: its bucket is in memory; no worker running when the API died)
is found instead by what it left: when a reaper takes the lease, or its connection came back (the registry may
have been lost meanwhile), it reads the records written within the window it may still re-publish safely
(``queue.duplicate_window`` − ``SAFETY`` before now, nats-server's clock, as the rounds do) and takes every origin
incarnation there that is not alive in the registry for a death (attack40a F6: ``kill -9`` of a whole ``gamead
up`` mid-submit left 20 records ``queued`` for ever, doctor ``no_message``). It reads only after ``registry.ttl``
from that moment, so an API alive through a NATS restart has put its entry again. Older records are not read:
they are ``gamead doctor --repair``'s, and a registry younger than the window's start while the records' stream
holds records older than it is said once (:func:`older_line`).
"""

from __future__ import annotations

from datetime import UTC, datetime

from nats.aio.msg import Msg
from nats.js import JetStreamContext

from gamead_core import names
from gamead_core.queue.connection import nats_boundary
from gamead_core.queue.scan import position, read_stream
from gamead_core.registry import NodeInfo, incarnation
from gamead_core.registry.wire import CREATE_FENCE

#: a record found with a dead incarnation's origin: (ad id, records' stream sequence, server time of the write)
Found = tuple[str, int, datetime]


async def read_records(js: JetStreamContext, wanted: dict[str, int] | None, timeout: float, *,
                       start_seq: int | None = None, start_time: datetime | None = None,
                       ) -> tuple[dict[str, list[Found]], int | None]:
    """The records' stream read once, headers only, from ``start_seq`` or ``start_time`` to its end: per origin of
    ``wanted`` (origin → the last sequence already read for it; None: every origin, from the start), the creates
    carrying it past that sequence, and the last sequence this read covered (None: it read nothing and learnt
    nothing new). A record rewritten during the read counts by its last revision (``read_stream``'s ``follow``:
    before, one rewritten ahead of the read was not read at all). Raises GameadError
    (:class:`~gamead_core.queue.scan.ScanIncomplete`: the read stalled before the end; the round is tried again,
    nothing read counts as covered)."""
    stream, hits, last = names.ADS_BUCKET_STREAM, {}, None  # type: ignore[var-annotated]
    if start_time is not None:  # nothing at or after start_time is a read that ends at once: it covered the end
        with nats_boundary():
            last = (await js.stream_info(stream)).state.last_seq
    async for msg in read_stream(js, stream, names.kv_prefix(names.ADS_BUCKET) + ">", headers_only=True,
                                 start_seq=start_seq, start_time=start_time, timeout=timeout, follow=True):
        seq = position(msg)[0]  # from the reply's tokens: nats-py's msg.metadata (a datetime, four objects) only
        last = seq if last is None else max(last, seq)  # for the hits, at the end (perf42: it was ~70 % of a read)
        origin, ad_id = (msg.headers or {}).get(names.HDR_ORIGIN), msg.subject.rsplit(".", 1)[-1]
        if origin is not None and (wanted is None or seq > wanted.get(origin, seq)):
            hits[ad_id] = origin, seq, msg.reply  # not the message: its headers and subject, ~500 B more a hit
        else:  # (a revision read before, by a dead API, is not the record's last one)
            hits.pop(ad_id, None)
    found: dict[str, list[Found]] = {}
    for ad_id, (origin, seq, reply) in hits.items():
        found.setdefault(origin, []).append((ad_id, seq, _written_at(reply)))
    return found, last


def _written_at(reply: str) -> datetime:
    """The server time a record's revision was stored at, from the reply subject of its delivery, as nats-py's
    ``msg.metadata`` reads it (:func:`read_records` keeps the reply of each hit, not the message: review42b F4)."""
    return Msg(_client=None, reply=reply).metadata.timestamp  # type: ignore[arg-type]


def origin_node(origin: str) -> NodeInfo | None:
    """The API an origin (``"<node id>:<pid>@<started at>"``, :func:`gamead_core.registry.incarnation`) names, as a
    registry entry would have said it, for a death whose entry no one read (pure); None if it is not one. Its
    ``fence`` is this gamead's: the APIs that write an origin keep one (an older one's blind delete: the Limits of
    :mod:`gamead_core.worker.orphans`)."""
    head, _, at = origin.rpartition("@")
    node_id, _, pid = head.rpartition(":")
    try:
        started = datetime.fromisoformat(at)
        node = NodeInfo(id=node_id, role="api", host="", pid=int(pid), version="(unknown: not in the registry)",
                        started_at=started, heartbeat_at=started, fence=CREATE_FENCE)
    except ValueError:
        return None
    return node if node_id and incarnation(node.id, node.pid, node.started_at) == origin else None


async def older_line(js: JetStreamContext, registry_stream: str, since: float) -> str | None:
    """The WARNING a reaper says once at :func:`unseen` when deaths older than its read may be unsettled: the
    registry bucket was created after ``since`` (epoch seconds, nats-server's clock: the read's start; it was lost,
    with nats-server) while the records' stream holds records written before ``since``. None otherwise."""
    with nats_boundary():
        born, records = (await js.stream_info(registry_stream)).created, await js.stream_info(names.ADS_BUCKET_STREAM)
        if born is None or records.state.messages == 0 or born.timestamp() <= since:
            return None
        first = await js.get_msg(names.ADS_BUCKET_STREAM, seq=records.state.first_seq)
    if first.time is None or first.time.timestamp() >= since:
        return None
    return (f"the registry is new since {born.astimezone(UTC):%H:%M:%S} UTC (NATS restarted): an API that died "
            "before, between its record and its message, is not known here, and its records written more than the "
            "re-publish window ago are left queued without a message: run `gamead doctor --repair` to settle them")


__all__ = ["Found", "older_line", "origin_node", "read_records"]
