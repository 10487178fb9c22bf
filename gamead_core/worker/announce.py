"""The held-ads announcement's bytes: the last heartbeat's document with ``holding``, ``inFlight``,
``unstartedSince`` and ``heartbeatAt`` brought up to date, spliced from bytes made once per beat (issue 14).

At a steady trickle of ads every start step announces (an unconfirmed registry put before the analyses start,
so a crash is charged: :mod:`gamead_core.worker.reaper`). The document is ~1.8 kB, nearly all of it the beat's
(latency buckets, counters), which changes once per heartbeat: :func:`beat_head` serialises that part once,
and :func:`announcement` appends the four fields that change per step to it (key order aside, the same JSON
object as the beat's document updated with them; readers validate it as a ``NodeInfo``, order-free).

``unstartedSince`` is among them since an announcement goes out exactly when held ads start: as of the last beat,
an ad started since still counted as waiting, its age growing, until the next beat (review30 F1).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from gamead_core.models import utc_iso

#: the fields an announcement brings up to date (the rest is the last beat's)
FRESH = ("holding", "inFlight", "unstartedSince", "heartbeatAt")
#: how many ``unstartedSince`` times :func:`since_iso` keeps written (bounded: emptied when full)
ISO_MEMO_SIZE = 64
_ISO: dict[float, str] = {}


def since_iso(at: float) -> str:
    """``utc_iso(at)`` (epoch s → ISO 8601 ``Z``), remembered for the next announcements: a level's oldest unstarted
    ad is the same from one start step to the next until it starts, and formatting a datetime costs ~2-3 µs, so
    5 levels were ~10 of an announcement's ~20 µs (session 35). At most :data:`ISO_MEMO_SIZE` kept."""
    text = _ISO.get(at)
    if text is None:
        if len(_ISO) >= ISO_MEMO_SIZE:
            _ISO.clear()
        text = _ISO[at] = utc_iso(at)
    return text


def beat_head(doc: dict[str, Any]) -> bytes:
    """The JSON of the beat's document ``doc`` (a ``NodeInfo`` as JSON, decoded) without :data:`FRESH` and
    without its closing brace: the constant part of every announcement until the next beat."""
    return orjson.dumps({k: v for k, v in doc.items() if k not in FRESH})[:-1]


def announcement(head: bytes, holding: list[dict[str, object]] | bytes, in_flight: int, heartbeat_at: str,
                 unstarted_since: Mapping[int, float] | None = None) -> bytes:
    """``head`` (:func:`beat_head`) completed with ``holding`` (the held ads' wire form, or its JSON already:
    :meth:`~gamead_core.worker.held.HeldAds.wire_json`), ``inFlight``,
    ``unstartedSince`` (priority → epoch s, :func:`gamead_core.worker.unstarted.unstarted_since`; None: none held)
    and ``heartbeatAt`` (an ISO 8601 time, :func:`gamead_core.models.iso_z`)."""
    sep = b"," if len(head) > 1 else b""
    since = {str(level): since_iso(at) for level, at in (unstarted_since or {}).items()}
    held = holding if isinstance(holding, bytes) else orjson.dumps(holding)
    return b"%s%s\"holding\":%s,\"inFlight\":%d,\"unstartedSince\":%s,\"heartbeatAt\":%s}" % (
        head, sep, held, in_flight, orjson.dumps(since), orjson.dumps(heartbeat_at))
