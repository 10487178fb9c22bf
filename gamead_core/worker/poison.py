"""What a work message must be before a worker trusts it: what the API would have published (attack31a F3, F4).

The API publishes an ad's work message with ``Gamead-Ad-Id: <id>`` (an id it issued: :func:`gamead_core.ids.is_ad_id`)
and, as the body, that ad's record as the API made it (:mod:`gamead_core.intake`). Anything else on a work subject
(a hand-made publish, another tool, a bug) is *poison*: it is never analysed and nothing is created from it; the
worker terminates it once, logs one ERROR naming its stream sequence, counts it by :data:`REASONS` (its
``/metrics``: ``gamead_poison_messages_total{reason}``) and keeps a bounded trace (:mod:`~.poison_trace`).

The body is checked where the worker uses it: a first delivery that trusts its record (``Gamead-Record-Revision``)
and a record created from the message (:mod:`gamead_core.worker.records`); a delivery whose ad's record exists is
served from the record. Pure: no I/O.
"""

from __future__ import annotations

from typing import Final

from pydantic import ValidationError

from gamead_core.detail_words import detail_words
from gamead_core.ids import is_ad_id
from gamead_core.models import AdRecord
from gamead_core.store.ads import decode

#: Why a message is poison: the only values of the metric's ``reason`` label (never a client string).
#: ``bad_ad_id``: no ``Gamead-Ad-Id`` header, or not an id the API issues; ``not_a_record``: the body is not an ad
#: record (not JSON, a field missing or outside the ad's rules); ``id_mismatch``: the body is another ad's record;
#: ``invalid_record``: a record the API never makes (priority outside 1-5, negative attempts …);
#: ``no_record``: the record created from the message could not be read back (no longer used: such a delivery is
#: handed back, review31 R7; kept so the label set stays the same).
REASONS: Final[tuple[str, ...]] = ("bad_ad_id", "not_a_record", "id_mismatch", "invalid_record", "no_record")
_SHOWN = 40  #: characters of a client's string quoted in a reason's detail


class NotAnAd(ValueError):
    """A work message that is not an ad: ``reason`` (one of :data:`REASONS`) and ``why`` (one line for the log)."""

    def __init__(self, reason: str, why: str) -> None:
        super().__init__(why)
        self.reason = reason if reason in REASONS else "not_a_record"
        self.why = why


def quoted(value: object) -> str:
    """``value`` as a short, printable quotation for a log line (ASCII, at most ~40 characters, ``…`` if cut)."""
    text = ascii(value)
    return text if len(text) <= _SHOWN else text[:_SHOWN] + "…"


def check_ad_id(header: str | None) -> None:
    """Raise :class:`NotAnAd` (``bad_ad_id``) unless ``header`` (the message's ``Gamead-Ad-Id``) is an ad id as the
    API issues it (a lowercase ULID, :mod:`gamead_core.ids`)."""
    if header is None:
        raise NotAnAd("bad_ad_id", "it has no Gamead-Ad-Id header")
    if not is_ad_id(header):
        raise NotAnAd("bad_ad_id", f"its Gamead-Ad-Id {quoted(header)} is not an ad id the API issues")


def record_problem(record: AdRecord) -> str | None:
    """What in ``record`` the API never writes (its id is not an issued id, priority outside 1-5, attempts or
    replays below 0), or None. The ad itself was validated by the model (``AdSubmission``: texts, duration,
    its priority 1-5). A record's priority may differ from its ad's: a DLQ import's entry names its own."""
    if not is_ad_id(record.id):
        return f"its id {quoted(record.id)} is not an ad id the API issues"
    if not 1 <= record.priority <= 5:
        return f"its priority {record.priority} is outside 1-5"
    if record.attempts < 0 or (record.replays or 0) < 0:
        return f"its attempts ({record.attempts}) or replays ({record.replays}) are below 0"
    return None


def message_record(data: bytes, ad_id: str) -> AdRecord:
    """The record ``data`` (a work message's body) holds, as the API would have written it for ``ad_id``.
    Raises :class:`NotAnAd`: ``not_a_record`` (not a valid record), ``id_mismatch`` (another ad's record),
    ``invalid_record`` (:func:`record_problem`)."""
    try:
        record = decode(data)
    except ValidationError as exc:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid"}
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise NotAnAd("not_a_record", f"its body is not an ad record ({quoted(where)[1:-1]}: "
                      f"{detail_words(dict(first), where)[:120]})") from None
    except ValueError:
        raise NotAnAd("not_a_record", "its body is not an ad record") from None
    if record.id != ad_id:
        raise NotAnAd("id_mismatch", f"its body is the record of {quoted(record.id)}, its Gamead-Ad-Id names "
                      f"{quoted(ad_id)}")
    problem = record_problem(record)
    if problem is not None:
        raise NotAnAd("invalid_record", f"its body is not a record the API writes: {problem}")
    return record


__all__ = ["REASONS", "NotAnAd", "check_ad_id", "message_record", "quoted", "record_problem"]
