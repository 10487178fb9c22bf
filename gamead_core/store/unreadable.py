"""A stored ad record this gamead cannot read (attack31a F8): :class:`UnreadableRecord`, raised by
:meth:`gamead_core.store.ads.AdStore.get` instead of pydantic's ``ValidationError``.

A value in the ad-record bucket that is not JSON, not an ad record, or holds a value this version does not know (a
status a newer gamead added) is not a missing ad: it names its revision, so a worker holding the ad's work message
rebuilds the record from the message by compare-and-set over it (:func:`gamead_core.worker.records.rebuild`), the
API answers 409 ``record_unreadable`` for it (``GET /ads/{id}``), listings skip it and count it
(:mod:`gamead_core.store.listing`), and ``gamead doctor`` reports it when its ad is live
(:mod:`gamead_core.doctor.unreadable`). Fields a newer gamead added are not this: they are ignored on read
(:class:`gamead_core.models.AdSubmission`, README "Upgrades").
"""

from __future__ import annotations

from pydantic import ValidationError

from gamead_core.errors import GameadError
from gamead_core.models import STORED, AdRecord

_SHOWN = 160  #: characters of the decoder's first complaint kept in the message


class UnreadableRecord(GameadError, ValueError):
    """The record of ``ad_id`` at ``revision`` (its KV revision) cannot be read as an ad record (``why``: the
    decoder's first complaint). Also a ``ValueError``, as the decoding error it replaces. ``details``:
    ``{"adId", "revision"}``; HTTP 409 ``record_unreadable``."""

    code = "record_unreadable"

    def __init__(self, ad_id: str, revision: int, why: str) -> None:
        super().__init__(f"the record of ad {ad_id} (revision {revision}) cannot be read as an ad record by this "
                         f"gamead ({why}): not JSON, not a record, or a value a newer gamead writes; a worker "
                         "rebuilds it from the ad's waiting work message, and `gamead doctor` names it",
                         details={"adId": ad_id, "revision": revision})
        self.ad_id = ad_id
        self.revision = revision
        self.why = why


def why_unreadable(exc: ValueError) -> str:
    """One short line of what the decoder said about a value (the first error's place and message). Pure."""
    if isinstance(exc, ValidationError) and exc.errors():
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        return f"{where}: {first['msg']}"[:_SHOWN]
    return str(exc)[:_SHOWN] or type(exc).__name__


def decode_stored(ad_id: str, data: bytes, revision: int) -> AdRecord:
    """The record ``data`` (the value of ``ad_id``'s key at ``revision``) holds. Raises :class:`UnreadableRecord`."""
    try:
        return AdRecord.model_validate_json(data, context=STORED)  # as gamead_core.store.ads.decode
    except ValueError as exc:
        raise UnreadableRecord(ad_id, revision, why_unreadable(exc)) from None


__all__ = ["UnreadableRecord", "decode_stored", "why_unreadable"]
