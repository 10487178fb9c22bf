"""The rules an entry sent to ``POST /v1/dlq/import`` must pass (reviewer V10, N2): the bounds of the entries the
service writes itself, so an import can never put into the DLQ what no worker could have written.

* ``adId`` an ad id and ``workerId`` a worker id, by the validators of :mod:`gamead_core.ids` (never a subject
  wildcard such as ``a.b.>``); an older export's ``id`` must equal ``adId``;
* ``title`` an ad's title (:data:`~gamead_core.models.Text200`), and ``ad.title`` the same (the service copies it);
* ``priority`` 1-5, ``attempts`` 0-1,000,000, ``sourceSeq`` a stream sequence (1 to 2⁶⁴-1);
* ``errorClass`` a class name (letters, digits, ``_`` and ``.``; at most
  :data:`~gamead_core.models.MAX_ERROR_CLASS` characters; what the service writes is cut to it); ``errorMessage``
  longer than :data:`~gamead_core.models.MAX_ERROR_MESSAGE` is *cut* to it (``…`` at its end), as the service cuts
  what it writes, not refused: an entry an older gamead wrote (it kept the whole message) still imports;
* ``errorMessage`` without the control characters an ad's texts refuse (C0 but tab, LF, CR; DEL; C1; bidi
  embedding/override/isolate: :func:`gamead_core.safe_text.refused_char`), as ``title`` and the ad's texts;
* ``traceparent`` a W3C trace context (``00-<32 hex>-<16 hex>-<2 hex>``);
* every time (``submittedAt``, ``firstFailureAt``, ``lastFailureAt``, ``deadAt``) at most :data:`CLOCK_SKEW`
  seconds in the future on nats-server's clock (what every gamead node stamps with, :mod:`gamead_core.clock`, so
  an export of the service's own DLQ always imports back): an entry from the future (``9999-12-31``) would sort
  after every real one and never age.

A failed rule is 422 ``validation_failed`` naming ``entries.N.<field>``; nothing is written.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Final

from pydantic import ConfigDict, Field, ValidationInfo, field_validator, model_validator

from gamead_core.ids import AdId, WorkerId
from gamead_core.json_keys import one_name_per_field
from gamead_core.models import (
    MAX_ERROR_CLASS, MAX_ERROR_MESSAGE, AdSubmission, DlqEntry, Text200, clip_text, utcnow,
)
from gamead_core.safe_text import code_point, refused_char

#: How far in the future an imported time may be (seconds, on nats-server's clock): another environment's clock
#: (its own nats-server's) may differ a little from this one's.
CLOCK_SKEW: Final = 300.0
#: an exception's class name, as the service records it (``type(exc).__name__``), optionally dotted
ERROR_CLASS_PATTERN: Final = r"^[A-Za-z_][A-Za-z0-9_.]*$"
TRACEPARENT_PATTERN: Final = r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$"
MAX_SEQ: Final = 2**64 - 1


class ImportedEntry(DlqEntry):
    """An entry from ``gamead dlq export``, checked by the rules of the module docstring. An export of an older
    gamead also carries ``id`` (the same ad id): accepted when equal to ``adId``, else 422 at ``entries.N.id``;
    it is not kept."""

    model_config = ConfigDict(extra="ignore")

    ad_id: AdId
    title: Text200
    priority: int = Field(ge=1, le=5)
    attempts: int = Field(ge=0, le=1_000_000)
    error_class: str = Field(min_length=1, max_length=MAX_ERROR_CLASS, pattern=ERROR_CLASS_PATTERN)
    error_message: str = Field(description=f"Cut to {MAX_ERROR_MESSAGE:,} characters ('…' last) as the service "
                               "cuts what it writes; a longer one is accepted (an older gamead kept it whole).")
    worker_id: WorkerId | None = None
    source_seq: int | None = Field(None, ge=1, le=MAX_SEQ)
    traceparent: str | None = Field(None, pattern=TRACEPARENT_PATTERN)
    id: AdId | None = Field(None, exclude=True, description="Older exports only: must equal adId.")

    @model_validator(mode="before")
    @classmethod
    def _one_name_per_field(cls, data: Any) -> Any:
        """An entry giving a field under both its names (``adId`` and ``ad_id``), or its ad doing so
        (``targetAudience`` and ``target_audience``), is refused: unknown keys are ignored here (an export of a
        later gamead may carry more), so one name would be dropped without a word (attack27b F3, F4)."""
        one_name_per_field(cls, data)
        if isinstance(data, dict):
            one_name_per_field(AdSubmission, data.get("ad"))
        return data

    @field_validator("error_message", mode="before")
    @classmethod
    def _cut_as_written(cls, value: object) -> object:
        """An over-long message is cut as the service cuts what it writes (an older gamead did not); the body's
        size cap (``api.max_body_bytes``) bounds what is read before."""
        return clip_text(value, MAX_ERROR_MESSAGE) if isinstance(value, str) else value

    @field_validator("error_message")
    @classmethod
    def _no_terminal_controls(cls, value: str) -> str:
        """Refused as in an ad's texts (:func:`gamead_core.safe_text.refused_char`): a C0 control but tab, LF and
        CR, DEL, a C1 control, a bidi embedding/override/isolate control; the message is shown to operators."""
        if (bad := refused_char(value)) is not None:
            raise ValueError(f"must not contain control characters (found {code_point(bad)})")
        return value

    @field_validator("id")
    @classmethod
    def _same_as_ad_id(cls, value: str | None, info: ValidationInfo) -> str | None:
        ad_id = info.data.get("ad_id")
        if value is not None and ad_id is not None and value != ad_id:
            raise ValueError(f"must be the same ad id as adId ({ad_id!r}); it is an older export's copy of adId")
        return value

    @field_validator("submitted_at", "first_failure_at", "last_failure_at", "dead_at")
    @classmethod
    def _not_in_the_future(cls, value: datetime) -> datetime:
        """Refused more than :data:`CLOCK_SKEW` s after now on nats-server's clock (``utcnow``, the clock every
        gamead node stamps with: :mod:`gamead_core.clock`). The entry's writer may be at fault (another
        environment's clock, an older gamead that stamped with its host's): the message says the time, the
        API's now and the bound, and asserts nothing about the ad (attack33a F8)."""
        now = utcnow()
        if value > now + timedelta(seconds=CLOCK_SKEW):
            ahead = (value - now).total_seconds()
            raise ValueError(f"{value.isoformat(timespec='seconds')} is {ahead:.0f} s after the API's now "
                             f"({now.isoformat(timespec='seconds')}, nats-server's clock), more than the "
                             f"{CLOCK_SKEW:.0f} s allowed: the clock of whatever wrote this entry was ahead, or "
                             "the time was edited; correct or remove that line")
        return value

    @field_validator("ad")
    @classmethod
    def _titled_as_the_entry(cls, ad: AdSubmission, info: ValidationInfo) -> AdSubmission:
        title = info.data.get("title")
        if title is not None and ad.title != title:
            raise ValueError(f"the ad's title ({ad.title[:60]!r}) must be the entry's title ({title[:60]!r}), as "
                             "the service writes it")
        return ad
