"""The bytes of a ``completed`` record, built by hand from the attempt's record and its analysis (issue 14).

A worker's common path ends with one compare-and-set of ``encode(started.model_copy(update={status: completed,
completedAt: now, analysis, retryAt: None, suspect: None}))`` (:meth:`gamead_core.worker.settle.Settler.complete`):
a model copy (~3 µs) and pydantic's JSON of a ~2.5 kB record (~11 µs) per ad. :func:`completed_bytes` writes
the same bytes with one ``orjson.dumps`` of plain dicts (the fields of :class:`~gamead_core.models.AdRecord` in
the model's order under their wire names, ``None`` left out as :func:`gamead_core.store.ads.encode`'s
``exclude_none`` does), without building the completed record at all; it is built only on the rare paths that
need it (a lost compare-and-set, a storage error).

The bytes are the model's own, byte for byte (``tests/unit/test_completed_json.py``: hypothesis-generated ads,
analyses and times). The layout is checked once at import against the model (:func:`_layout_holds`), and a
record holding anything the hand-built path does not know (an ``error`` of an earlier attempt, a datetime that is
not UTC, an analysis a hook changed into something the analyser does not build) is encoded by the model, so the bytes cannot drift from what ``GET /ads/{id}`` and ``gamead doctor`` read.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import orjson

from gamead_core.models import AdRecord, AdStatus, AdSubmission, Analysis, ComponentScore
from gamead_core.store.ads import encode
from gamead_core.worker.transitions import attempt_fields, started_record

__all__ = ["completed_bytes", "completed_bytes_of", "completed_record"]

_ZERO = timedelta(0)


def _wire(model: type[Any]) -> tuple[tuple[str, str], ...]:
    """(attribute, wire name) of every field of ``model``, in the order pydantic serialises them."""
    return tuple((name, field.serialization_alias or field.alias or name) for name, field in model.model_fields.items())


_RECORD = _wire(AdRecord)
_AD = _wire(AdSubmission)
_ANALYSIS = _wire(Analysis)
_COMPONENT = _wire(ComponentScore)


def completed_record(started: AdRecord, now: datetime, analysis: Analysis) -> AdRecord:
    """The completed record of the attempt whose record is ``started`` (a :meth:`Settler.started` record or the
    mark written from it): ``completed`` at ``now`` with ``analysis``, no ``retryAt``, no ``suspect``."""
    return started.model_copy(update={
        "status": AdStatus.COMPLETED, "completed_at": now, "analysis": analysis, "retry_at": None, "suspect": None,
    })


class _NotByHand(Exception):
    """Internal: a record the hand-built path does not write; the model encodes it."""


#: the fields the common path's record holds (each not None) and those it leaves out (each None), by attribute
_COMMON = ("id", "status", "priority", "submitted_at", "ad", "started_at", "completed_at", "attempts", "worker_id",
           "analysis", "delivery")
_ABSENT = tuple(name for name, _ in _RECORD if name not in _COMMON)
_W = dict(_RECORD)  #: attribute → wire name
_COMPONENTS = dict(_ANALYSIS)["components"]
#: a component's fields are its wire names, in order: its ``__dict__`` is its JSON object as it is
_SAME = all(name == wire for name, wire in _COMPONENT)


def _by_hand(f: dict[str, Any], now: datetime, analysis: Analysis) -> bytes:
    """The common path's completed record, from the started record's fields ``f`` (its ``__dict__``): every field
    of :data:`_ABSENT` None but ``retryAt`` and ``suspect`` (cleared by the completion), times aware (orjson writes
    them as pydantic does: ``…123456Z``, no fraction when whole; any offset but zero is left to the model); raises
    :class:`_NotByHand` for any other record."""
    for name in _ABSENT:
        if f[name] is not None and name not in ("retry_at", "suspect"):
            raise _NotByHand
    submitted, began, worker_id, delivery = f["submitted_at"], f["started_at"], f["worker_id"], f["delivery"]
    if began is None or worker_id is None or delivery is None:
        raise _NotByHand
    for when in (submitted, began, now):
        if when.utcoffset() != _ZERO:
            raise _NotByHand
    ad = f["ad"].__dict__
    a = analysis.__dict__
    if not _plain(analysis, a["components"]):
        raise _NotByHand
    w = _W
    return orjson.dumps({
        w["id"]: f["id"], w["status"]: "completed", w["priority"]: f["priority"], w["submitted_at"]: submitted,
        w["ad"]: {wire: ad[name] for name, wire in _AD},
        w["started_at"]: began, w["completed_at"]: now, w["attempts"]: f["attempts"], w["worker_id"]: worker_id,
        w["analysis"]: {wire: a[name] for name, wire in _ANALYSIS} | {_COMPONENTS: [
            c.__dict__ if _SAME else {cw: c.__dict__[cn] for cn, cw in _COMPONENT} for c in a["components"]]},
        w["delivery"]: delivery,
    }, option=orjson.OPT_UTC_Z)


def _plain(analysis: Analysis, components: list[ComponentScore]) -> bool:
    """True when ``analysis`` is exactly what the analyser builds: an :class:`Analysis` and :class:`ComponentScore` s
    (no subclass: its own fields would be written from ``__dict__``) whose scores and weights are floats (a hook
    setting an int writes ``7``, the model ``7.0``; reviewer V8)."""
    if type(analysis) is not Analysis or type(analysis.effectiveness_score) is not float:
        return False
    return all(type(c) is ComponentScore and type(c.score) is float and type(c.weight) is float for c in components)


def _layout_holds() -> bool:
    """True when a sample completed record built by hand is byte for byte the model's (checked at import)."""
    from gamead_core.worker.analyzer import analyze

    ad = AdSubmission(title="Sample \"ad\" \u00e9", description="a\tb\nc\\d — play now, free!", genre="rpg",
                      target_audience=["x", "18-24"], visual_elements=["dragon"], call_to_action="Download now",
                      duration=30, priority=2)
    when = datetime(2026, 11, 30, 12, 0, 0, 123456, tzinfo=timezone.utc)
    started = AdRecord(id="01jdsample0000000000000000", status=AdStatus.PROCESSING, priority=2, submitted_at=when,
                       ad=ad, started_at=when, attempts=1, worker_id="w-1", delivery="7.1", suspect=True)
    try:
        done = when.replace(microsecond=0)
        return _by_hand(started.__dict__, done, analyze(ad)) == encode(completed_record(started, done, analyze(ad)))
    except Exception:  # noqa: BLE001 - any surprise means: use the model
        return False


_HAND = _layout_holds()


def completed_bytes(started: AdRecord, now: datetime, analysis: Analysis) -> bytes:
    """``encode(completed_record(started, now, analysis))``, the same bytes, built by hand where the record holds
    nothing but what the common path writes (else by the model). ``now``: an aware UTC datetime. Never raises
    for a valid record."""
    if _HAND:
        try:
            return _by_hand(started.__dict__, now, analysis)
        except (_NotByHand, orjson.JSONEncodeError):
            pass
    return encode(completed_record(started, now, analysis))


def completed_bytes_of(rec: AdRecord, delivery: str, worker_id: str, began: datetime, now: datetime,
                       analysis: Analysis) -> bytes:
    """``completed_bytes(started_record(rec, delivery, worker_id, at=began), now, analysis)``, the same bytes,
    without building the started record (pydantic's ``model_copy``, ~3.5 µs per ad, drain46): the batch start's
    common path, which needs that record only when its write does not succeed (then it builds it, from the same
    ``began``). The fields the started record changes are :func:`~.transitions.attempt_fields`; its ``status`` and
    ``suspect`` are not written (the completion sets the one and clears the other)."""
    if _HAND:
        try:
            return _by_hand({**rec.__dict__, **attempt_fields(rec, delivery, worker_id, began)}, now, analysis)
        except (_NotByHand, orjson.JSONEncodeError):
            pass  # the started record's fields fail _by_hand as these do: not tried twice
    return encode(completed_record(started_record(rec, delivery, worker_id, at=began), now, analysis))
