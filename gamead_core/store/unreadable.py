"""A stored ad record this gamead cannot read (attack31a F8): :class:`UnreadableRecord`, raised by
:meth:`gamead_core.store.ads.AdStore.get` instead of pydantic's ``ValidationError``.

A value in the ad-record bucket that is not JSON, not an ad record, or holds a value this version does not know (a
status a newer gamead added) is not a missing ad: it names its revision, so a worker holding the ad's work message
rebuilds the record from the message by compare-and-set over it (:func:`gamead_core.worker.records.rebuild`), the
API answers 409 ``record_unreadable`` for it (``GET /ads/{id}``), listings skip it and count it
(:mod:`gamead_core.store.listing`), and ``gamead doctor`` reports it when its ad is live
(:mod:`gamead_core.doctor.unreadable`). Fields a newer gamead added are not this: they are ignored on read
(:class:`gamead_core.models.AdSubmission`, README "Upgrades").

A value that is a JSON object naming its own ad and fails only on a value of a known field this version does not
know (an unknown ``status``: :func:`written_by_newer`) is a newer gamead's record, not garbage: ``newer`` is set,
and a worker leaves its message to a newer worker instead of rebuilding over it (review31 R10).
"""

from __future__ import annotations

import orjson
from pydantic import ValidationError

from gamead_core.detail_words import detail_words
from gamead_core.errors import GameadError
from gamead_core.models import STORED, AdRecord

_SHOWN = 160  #: characters of the decoder's first complaint kept in the message


class UnreadableRecord(GameadError, ValueError):
    """The record of ``ad_id`` at ``revision`` (its KV revision) cannot be read as an ad record (``why``: the
    decoder's first complaint). Also a ``ValueError``, as the decoding error it replaces. ``details``:
    ``{"adId", "revision"}``; HTTP 409 ``record_unreadable``."""

    code = "record_unreadable"

    def __init__(self, ad_id: str, revision: int, why: str, newer: bool = False) -> None:
        super().__init__(f"the record of ad {ad_id} (revision {revision}) cannot be read as an ad record by this "
                         f"gamead ({why}): not JSON, not a record, or a value a newer gamead writes; a worker "
                         "rebuilds it from the ad's waiting work message, and `gamead doctor` names it",
                         details={"adId": ad_id, "revision": revision})
        self.ad_id = ad_id
        self.revision = revision
        self.why = why
        self.newer = newer  #: a newer gamead's record (:func:`written_by_newer`): never written over


def why_unreadable(exc: ValueError) -> str:
    """One short line of what the decoder said about a value (the first error's place and message). Pure."""
    if isinstance(exc, ValidationError) and exc.errors():
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        return f"{where}: {detail_words(dict(first), where)}"[:_SHOWN]
    return str(exc)[:_SHOWN] or type(exc).__name__


#: pydantic error types of a value a newer gamead may write in a field this version knows (a new enum member)
_NEWER_VALUE_ERRORS = frozenset({"enum", "literal_error"})


def written_by_newer(ad_id: str, data: bytes, exc: ValueError) -> bool:
    """Whether ``data`` (``ad_id``'s stored value that failed to decode with ``exc``) is a newer gamead's record: a
    JSON object whose ``id`` is ``ad_id`` and whose every complaint is a value outside a known field's choices (an
    unknown ``status``, review31 R10). Anything else (not JSON, not an object, no or another id, a field missing or
    of another type) is garbage a worker may rebuild. Pure."""
    if not isinstance(exc, ValidationError) or not exc.errors():
        return False
    try:
        value = orjson.loads(data)
    except ValueError:
        return False
    if not isinstance(value, dict) or value.get("id") != ad_id:
        return False
    return all(error["type"] in _NEWER_VALUE_ERRORS for error in exc.errors())


def decode_stored(ad_id: str, data: bytes, revision: int) -> AdRecord:
    """The record ``data`` (the value of ``ad_id``'s key at ``revision``) holds. Raises :class:`UnreadableRecord`."""
    try:
        return AdRecord.model_validate_json(data, context=STORED)  # as gamead_core.store.ads.decode
    except ValueError as exc:
        raise UnreadableRecord(ad_id, revision, why_unreadable(exc), written_by_newer(ad_id, data, exc)) from None


__all__ = ["UnreadableRecord", "decode_stored", "why_unreadable", "written_by_newer"]
