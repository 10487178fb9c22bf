"""The doctor's listing of the record keys: which ads have a record, final (completed, failed: their ``Nats-TTL``
header) or not, and which were withdrawn by their API (a delete marker with ``Gamead-Withdrawn``), each by the
key's *last* message read.

The listing reads the records' stream headers only (:func:`~gamead_core.doctor.read.scan_headers`) with
``follow``: the bucket keeps one revision per key, so a record rewritten while the listing runs (any writer's
update) leaves the sequence the listing had not reached yet for one past the end measured at its start. A
listing that stopped at that end never saw it (doctor36: 39 of 40 broken records rewritten during a run over 20,040
were never listed nor judged). Following the stream to its end as it is
when the read gets there, a key can come twice: its older message first, so the last one decides.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nats.js import JetStreamContext

from gamead_core import names
from gamead_core.doctor.model import ReadStats
from gamead_core.doctor.read import MSG_SIZE, TTL, ReadBudget, scan_headers
from gamead_core.errors import TopologyMissing

_KV_PREFIX = names.kv_prefix(names.ADS_BUCKET)
_MARKERS = (names.HDR_KV_OPERATION, names.HDR_MARKER_REASON)


@dataclass
class Keys:
    """The record keys listed, by their last message read: ``final`` (completed and failed records), ``other``
    (every other record: read whole by the doctor), ``withdrawn`` (ad id → the API incarnation that withdrew it;
    the caller's dict, filled in place). A key is in at most one of them."""

    final: set[str] = field(default_factory=set)
    other: set[str] = field(default_factory=set)
    withdrawn: dict[str, str] = field(default_factory=dict)

    def on_msg(self, subject: str, headers: dict[str, str] | None, seq: int, at: float) -> None:
        """One message of the records' stream (:data:`~gamead_core.doctor.read.OnMessage`), later ones replacing
        earlier ones of the same key."""
        h, key = headers or {}, subject[len(_KV_PREFIX):]
        self.final.discard(key)
        self.other.discard(key)
        if any(m in h for m in _MARKERS) or h.get(MSG_SIZE) == "0":  # a delete, purge or expiry marker: no record
            if names.HDR_WITHDRAWN in h:  # its API withdrew the ad: its client was told "not queued"
                self.withdrawn[key] = h[names.HDR_WITHDRAWN]
            else:
                self.withdrawn.pop(key, None)
            return
        self.withdrawn.pop(key, None)
        (self.final if TTL in h else self.other).add(key)


async def list_keys(js: JetStreamContext, budget: ReadBudget, stats: ReadStats, withdrawn: dict[str, str]) -> Keys:
    """Every record key of the ad bucket (module doc); ``stats.records`` counts them. A missing bucket lists none;
    a listing cut short says so in ``budget.partial``."""
    keys = Keys(withdrawn=withdrawn)
    try:
        await scan_headers(js, names.ADS_BUCKET_STREAM, f"{_KV_PREFIX}>", on_msg=keys.on_msg, budget=budget,
                           stats=stats, what="records", follow=True)
    except TopologyMissing:
        pass
    stats.records += len(keys.final) + len(keys.other)
    return keys


__all__ = ["Keys", "list_keys"]
