"""The held-ads announcement's bytes: the last heartbeat's document with ``holding``, ``inFlight``,
``unstartedSince``, ``heartbeatAt`` and ``handedBack`` (:mod:`.handed`) brought up to date, spliced from bytes made
once per beat (issue 14).

At a steady trickle of ads every start step announces (an unconfirmed registry put before the analyses start,
so a crash is charged: :mod:`gamead_core.worker.reaper`). The beat's part (latency buckets, counters, ~1.8 kB)
changes once per heartbeat: :func:`beat_head` serialises it once, and :func:`announcement` appends the four fields
that change per step to it. The held ads are most of the rest: ~150 bytes each, 17 per announcement on average
and up to 54 with a prefetch buffer (announce44, 1,000 ads/s, before the cuts below: 4.1 kB on average, up to
9.5 kB). Readers validate the document as a ``NodeInfo`` (order-free), and see the same one as the beat's document
updated with the four:
fields left out are the ones whose value is the model's empty default (:data:`EMPTY_DEFAULTS`; ``started`` false
in a held ad, :func:`gamead_core.worker.held.held_json`), which every gamead reads back as that default.

``unstartedSince`` is among them since an announcement goes out exactly when held ads start: as of the last beat,
an ad started since still counted as waiting, its age growing, until the next beat (review30 F1).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import orjson

from gamead_core.models import utc_iso
from gamead_core.registry import NodeInfo
from gamead_core.worker.held import held_json

#: the fields an announcement brings up to date (the rest is the last beat's)
FRESH = ("holding", "inFlight", "unstartedSince", "heartbeatAt", "handedBack")
#: how many ``unstartedSince`` times :func:`since_iso` keeps written (bounded: emptied when full)
ISO_MEMO_SIZE = 64
#: the ``NodeInfo`` fields (wire name → default) whose default is empty (None, 0, [], {}): left out of an
#: announcement's head when they hold exactly it, same type (a reader validates the same value: "None/0 from an
#: older node" in every version; a ``0.0`` where the default is None stays)
EMPTY_DEFAULTS: dict[str, object] = {f.alias or name: f.default for name, f in NodeInfo.model_fields.items()
                                     if not f.is_required() and f.default in (None, 0, [], {}) and not f.default}

_ISO: dict[float, str] = {}
_SECOND: list[Any] = [None, ""]  #: (the whole second :func:`now_iso` formatted last, its text without "Z")


def _default(key: str, value: object) -> bool:
    """True when ``value`` (decoded JSON) is the field ``key``'s :data:`EMPTY_DEFAULTS` value, of the same type."""
    return key in EMPTY_DEFAULTS and type(value) is type(EMPTY_DEFAULTS[key]) and value == EMPTY_DEFAULTS[key]


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


def now_iso(at: float) -> str:
    """``utc_iso(at)`` (epoch s → ``…T12:00:00.123456Z``, the microsecond rounded as ``datetime.fromtimestamp``
    rounds it: half to even, a carry into the second), without a datetime per call: the second's text is kept
    until the next second. An announcement's ``heartbeatAt`` at every start step (cpuworker48: 2-5× cheaper)."""
    frac, whole = math.modf(at)
    micro = round(frac * 1e6)
    if micro >= 1_000_000:
        whole, micro = whole + 1.0, micro - 1_000_000
    elif micro < 0:
        whole, micro = whole - 1.0, micro + 1_000_000
    second = _SECOND
    if second[0] != whole:
        second[0], second[1] = whole, utc_iso(whole)[:-1]  # a whole second: no fraction, "Z" cut
    return f"{second[1]}.{micro:06d}Z" if micro else f"{second[1]}Z"


def beat_head(doc: dict[str, Any]) -> bytes:
    """The JSON of the beat's document ``doc`` (a ``NodeInfo`` as JSON, decoded) without :data:`FRESH`, without
    the :data:`EMPTY_DEFAULTS` fields that hold their default, and without its closing brace: the constant part of
    every announcement until the next beat."""
    return orjson.dumps({k: v for k, v in doc.items() if k not in FRESH and not _default(k, v)})[:-1]


def announcement(head: bytes, holding: list[dict[str, object]] | bytes, in_flight: int, heartbeat_at: str,
                 unstarted_since: Mapping[int, float] | None = None,
                 handed_back: Mapping[str, list[int]] | None = None) -> bytes:
    """``head`` (:func:`beat_head`) completed with ``holding`` (the held ads' wire form, each written by
    :func:`~gamead_core.worker.held.held_json`, or its JSON already: :meth:`.held.HeldAds.wire_json`), ``inFlight``,
    ``unstartedSince`` (priority → epoch s, :func:`gamead_core.worker.unstarted.unstarted_since`; None: none held),
    ``heartbeatAt`` (an ISO 8601 time, :func:`gamead_core.models.iso_z`) and ``handedBack``
    (:meth:`gamead_core.worker.handed.RecentHandBacks.wire`; left out when empty, its default)."""
    sep = b"," if len(head) > 1 else b""
    since = {str(level): since_iso(at) for level, at in (unstarted_since or {}).items()}
    held = holding if isinstance(holding, bytes) else b"[%s]" % b",".join(map(held_json, holding))
    back = b',"handedBack":%s' % orjson.dumps(handed_back) if handed_back else b""
    return b"%s%s\"holding\":%s,\"inFlight\":%d,\"unstartedSince\":%s,\"heartbeatAt\":%s%s}" % (
        head, sep, held, in_flight, orjson.dumps(since), orjson.dumps(heartbeat_at), back)
