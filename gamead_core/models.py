"""Domain types: what a client submits, what the service stores, what the analysis returns.

Field names on the wire are camelCase, as in the spec's sample request; Python attributes are snake_case.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from enum import Enum
from typing import Annotated, Any

from pydantic import (
    AfterValidator, AliasGenerator, BaseModel, ConfigDict, Field, StringConstraints, ValidationInfo, field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from gamead_core import clock
from gamead_core.json_keys import only_drops_keys
from gamead_core.names import DEFAULT_PRIORITY
from gamead_core.safe_text import REFUSED, UNSHOWN_PRINTABLE, code_point, has_shown_char
from gamead_core.times import UtcDatetime

_WIRE = ConfigDict(
    alias_generator=AliasGenerator(alias=to_camel),
    populate_by_name=True,
    serialize_by_alias=True,
)

#: the validation context of a text read back from storage (a record, a DLQ entry): checked by the rule it was
#: written under (C0 controls and DEL refused), not refused for what a later rule refuses on input, so a record
#: from before the C1/bidi rule still reads (and is shown escaped: gamead_core.safe_text.shown)
STORED: dict[str, Any] = {"stored": True}
#: C0 control characters but tab and the line ends, and DEL: what storage always refused
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
#: a character that shows, by the rule stored text was written under (before attack32a F6: not whitespace, not
#: U+200B-F, U+2060-4 and the like); input has the stricter gamead_core.safe_text.has_shown_char
_VISIBLE = re.compile(r"[^\s\u00ad\u180e\u200b-\u200f\u2060-\u2064\u206a-\u206f\ufeff]")


def _stripped(text: str, info: ValidationInfo | None) -> str:
    """``text`` without surrounding whitespace. Refused (``ValueError``): a text with no character that shows
    (:func:`gamead_core.safe_text.has_shown_char`: only whitespace, U+200B, U+3164 and the like), or with a character
    :func:`gamead_core.safe_text.refused_char` refuses (C0 controls but tab, LF and CR; DEL; the C1 controls
    U+0080-U+009F; the bidi embedding/override/isolate controls U+202A-U+202E, U+2066-U+2069). Read with the
    :data:`STORED` context, only C0 controls and DEL are refused (the rule older records were written under)."""
    text = text.strip()
    if text and text.isprintable() and (text.isascii() or not UNSHOWN_PRINTABLE.search(text)):  # the common case:
        return text  # no control, format character, whitespace but U+0020, filler or selector: no further scan
    stored = info is not None and bool((info.context or {}).get("stored"))
    bad = _CONTROL.search(text) if stored else REFUSED.search(text)
    if bad is not None:
        raise ValueError(f"must not contain control characters (found {code_point(bad.group())})")
    if _VISIBLE.search(text) is None if stored else not has_shown_char(text):
        raise ValueError("must have a character that shows (not only whitespace or invisible characters)")
    return text


def is_ad_text(text: str) -> bool:
    """True when ``text`` passes the ad texts' content rule (something shows, no control character), length
    aside: for generators of valid ads (tests, benchmarks)."""
    try:
        _stripped(text, None)
    except ValueError:
        return False
    return True


#: An ad's text field as the OpenAPI document states it and the API enforces it, the same rule both ways:
#: at most ``max_length`` characters as sent, at least one of them not whitespace; surrounding whitespace is
#: then stripped. (Stripping first, pydantic's ``strip_whitespace``, accepted a padded 101-character tag the
#: schema's ``maxLength: 100`` forbids, and refused a blank one the schema allowed: Schemathesis found it.)
Text200 = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"\S"), AfterValidator(_stripped)]
Text2000 = Annotated[str, StringConstraints(min_length=1, max_length=2000, pattern=r"\S"), AfterValidator(_stripped)]
Tag = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"\S"), AfterValidator(_stripped)]
Genre = Annotated[str, StringConstraints(min_length=1, max_length=50, pattern=r"\S"), AfterValidator(_stripped)]

MAX_LIST_ITEMS = 50


class AdStatus(str, Enum):
    """Lifecycle of an ad: queued → processing → completed | failed | dead.

    ``failed`` is written by a DLQ purge only (``POST /v1/dlq/purge``: the ad is given up on, kept with its
    last error); like ``completed`` it is final (no write ever leaves it, so the read-through cache keeps
    it). ``dead`` is terminal but not final: a replay takes the ad back to ``queued``."""

    QUEUED = "queued"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    DEAD = "dead"

    @property
    def terminal(self) -> bool:
        return self in (AdStatus.COMPLETED, AdStatus.FAILED, AdStatus.DEAD)


class AdSubmission(BaseModel):
    """The body of ``POST /ads``. Unknown fields are rejected by name; read back from storage (the :data:`STORED`
    context: a record, a work message's body, a DLQ entry) they are dropped instead, so an ad a newer gamead wrote
    with a field this version does not know still reads (a rolling upgrade, attack31a F8; README "Upgrades")."""

    model_config = ConfigDict(**_WIRE, extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    @only_drops_keys  # the fields set stay keys the input held: the API's repeated-key check keeps its fast path
    def _newer_fields(cls, data: Any, info: ValidationInfo) -> Any:
        if isinstance(data, dict) and info.context and info.context.get("stored"):
            known = _known_keys(cls)
            if not known.issuperset(data):  # in C: a Python any() cost every stored read ~1 µs
                return {key: value for key, value in data.items() if key in known}
        return data

    title: Text200 = Field(description="The ad's title: 1-200 characters, surrounding whitespace stripped.")
    description: Text2000 = Field(description="What the ad shows and says: 1-2000 characters, stripped.")
    genre: Genre = Field(description="The game's genre, e.g. \"puzzle\": 1-50 characters, stripped.")
    target_audience: list[Tag] = Field(default_factory=list, max_length=MAX_LIST_ITEMS,
                                       description="Who the ad is for: up to 50 tags of 1-100 characters each.")
    visual_elements: list[Tag] = Field(default_factory=list, max_length=MAX_LIST_ITEMS,
                                       description="What the ad shows: up to 50 tags of 1-100 characters each.")
    call_to_action: Text200 = Field(description="What the ad asks the viewer to do: 1-200 characters, stripped.")
    duration: int = Field(ge=1, le=600, description="Length of the ad in seconds.")
    priority: int = Field(DEFAULT_PRIORITY, ge=1, le=5, description="1 most urgent … 5 least.")

    @field_validator("duration", "priority", mode="before")
    @classmethod
    def _no_bools(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("must be an integer, not a boolean")
        return value


_KNOWN: dict[type, frozenset[str]] = {}


def _known_keys(model: type[BaseModel]) -> frozenset[str]:
    """The field names and their wire aliases of ``model`` (computed once per class)."""
    known = _KNOWN.get(model)
    if known is None:
        fields = model.model_fields
        known = _KNOWN[model] = frozenset(fields) | {f.alias for f in fields.values() if f.alias}
    return known


def has_words(title: str, description: str) -> bool:
    """Whether the analyser has words to work with: a letter (``str.isalpha``: any script) in the title or the
    description. Pure. An ad without one can only be dead-lettered (an emoji-only or private-use text)."""
    return any(ch.isalpha() for ch in title) or any(ch.isalpha() for ch in description)


#: why :class:`NewAd` refuses an ad without words (the worker's PermanentError for an older one says the same)
NO_WORDS = "the title and description contain no letters: the analyser has no words to analyse"


class NewAd(AdSubmission):
    """An ad as the submit routes take it (``POST /ads``, ``POST /ads/batch``): an :class:`AdSubmission` whose
    title or description has a letter (:func:`has_words`), so no 202 is given to an ad certain to be dead-lettered
    at its first attempt and again at every replay (attack29b F3). Records and DLQ imports keep
    :class:`AdSubmission`: an ad stored before the rule still reads back, and dies as it always did."""
    _newer_fields = model_validator(mode="after")(lambda self: self)  # client input, never STORED: a no-op (perf44a)

    @field_validator("description")
    @classmethod
    def _has_words(cls, description: str, info: ValidationInfo) -> str:
        """Checked on ``description`` with the title validated before it: a 422 names a field (attack29c F5: a
        model check said ``(body)``); a title refused on its own is that field's error alone."""
        if "title" in info.data and not has_words(info.data["title"], description):
            raise ValueError(NO_WORDS)
        return description


class ComponentScore(BaseModel):
    """One named part of the effectiveness score, with why it scored as it did."""

    model_config = _WIRE

    name: str = Field(description="The part scored, e.g. \"call_to_action\".")
    score: float = Field(ge=0, le=10, description="This part's score, 0 (worst) to 10 (best).")
    weight: float = Field(ge=0, le=1, description="Its share of effectivenessScore, 0-1 (the weights add up to 1).")
    reason: str = Field(description="Why it scored so, in one sentence.")


class Analysis(BaseModel):
    """The analyser's verdict on one ad. Deterministic: the same ad always gets the same analysis."""

    model_config = _WIRE

    effectiveness_score: float = Field(ge=0, le=10, description="The ad's overall score, 0 (worst) to 10 (best): "
                                       "the weighted sum of the components' scores.")
    components: list[ComponentScore] = Field(description="The named parts of the score, each with its weight and "
                                                         "reason.")
    strengths: list[str] = Field(description="What works in the ad, one sentence each.")
    improvement_suggestions: list[str] = Field(description="What to change, one sentence each.")
    analyzer_version: str = Field(description="The analyser's rules that wrote this analysis, e.g. \"rules-2\" "
                                              "(the same ad and version always give the same analysis; an analysis "
                                              "keeps the version that wrote it).")


class AdError(BaseModel):
    """Why an ad failed (its last failure)."""

    model_config = _WIRE

    error_class: str = Field(description="The failure's kind, e.g. \"TaskTimeout\", \"WorkerLost\" (the DLQ filters "
                                         "on it).")
    message: str = Field(description="What went wrong, as the failure said it.")
    retryable: bool = Field(True, description="False for a permanent failure: the ad is dead-lettered at once, "
                                             "not retried.")
    at: datetime | None = Field(None, description="When it failed (ISO 8601, UTC, Z).")


class AdRecord(BaseModel):
    """What the service stores (KV bucket) and returns from ``GET /ads/{id}``."""

    model_config = _WIRE

    id: str = Field(description="The ad's id: a lower-case ULID, 26 characters, sortable by submission time.")
    status: AdStatus = Field(description="queued, processing, completed, dead (dead-lettered: a replay queues it "
                                         "again) or failed (purged from the DLQ). completed and failed are final.")
    priority: int = Field(description="1 most urgent … 5 least, as submitted.")
    submitted_at: datetime = Field(description="When the API accepted the ad (ISO 8601, UTC, Z).")
    ad: AdSubmission = Field(description="The ad as submitted, after validation (texts stripped).")
    started_at: datetime | None = Field(None, description="When the last analysis attempt started (ISO 8601, UTC).")
    completed_at: datetime | None = Field(None, description="When the ad ended: completed, or dead-lettered "
                                                            "(ISO 8601, UTC); cleared by a replay.")
    attempts: int = Field(0, description="Analysis attempts charged so far (a count; at most worker.max_attempts, "
                                         "5 by default, before the ad is dead-lettered). Deliveries that ran no "
                                         "analysis (a shutdown, storage down, another ad's crash) are not counted.")
    worker_id: str | None = Field(None, description="The worker that ran the last attempt, e.g. \"local-1\".")
    analysis: Analysis | None = Field(None, description="The verdict, once completed.")
    error: AdError | None = Field(None, description="The last failure: while retrying, once dead or failed, and "
                                   "kept as history when a later attempt or a DLQ replay completes the ad (the "
                                   "replayed DLQ entry is deleted; status says where the ad is now): a completed "
                                   "ad can have one, so test status, not error, to tell a failed ad.")
    idempotency_key: str | None = Field(None, description="The Idempotency-Key header the ad was submitted with.")
    #: sha256 of the validated ad a keyed submit carried: a repeat of the key with another ad is refused
    idempotency_fingerprint: str | None = Field(
        None, description="sha256 (hex) of the validated ad submitted with idempotencyKey: a repeat of the key "
                          "with another ad is refused (422 idempotency_key_reused).")
    first_failure_at: datetime | None = Field(None, description="When the first attempt failed (ISO 8601, UTC).")
    retry_at: datetime | None = Field(None, description="While retrying (status queued after a failure): when the "
                                                        "next attempt is due (ISO 8601, UTC).")
    replay_of: int | None = Field(None, description="The DLQ stream sequence the ad was last replayed from.")
    replays: int | None = Field(None, description="Times the ad was replayed from the DLQ (null: never); attempts "
                                                  "count since the last replay, firstFailureAt since the submit.")
    replayed_at: datetime | None = Field(None, description="When the ad was last replayed from the DLQ (ISO 8601, "
                                                           "UTC): its attempts count from there.")
    #: The delivery that last started an analysis: ``"<stream seq>.<delivery count>"`` of its message. Tells a
    #: delivery that is still running from one that was lost (a worker died), and which worker held it.
    delivery: str | None = Field(
        None, description="The delivery of the work message that last started an analysis: \"<stream sequence>."
                          "<delivery count>\" (e.g. \"4812.2\": message 4812 of its partition's work stream, "
                          "delivered the 2nd time). Tells a running attempt from one lost with its worker.")
    suspect: bool | None = Field(
        None, description="True after the ad was in flight beside others on a worker that died: it next runs "
                          "alone on its worker, so a crash then is its own. Absent otherwise.")
    #: The worker death (``"<worker id>:<pid>@<started at>"``, one incarnation) whose recovery settled the
    #: attempt this ad had running then: every later recovery of that death counts it as running too, so
    #: they all reach one verdict (gamead_core.worker.reaper.recover).
    lost_in: str | None = Field(
        None, description="The worker death that settled the attempt the ad had running then: \"<worker id>:"
                          "<pid>@<worker start, ISO 8601>\" (one incarnation of the worker).")
    #: While the DLQ is full: the failure the ad is dead-lettered with once there is room (attack31a F5)
    dead_letter_error: AdError | None = Field(
        None, description="While the DLQ is full (dlq.max_msgs): the failure the ad is dead-lettered with once it has "
                          "room; the ad is queued meanwhile, error naming the full DLQ, no attempt charged again.")
    attempts_assumed: int | None = Field(None, description="Of attempts, how many are assumed, not known: its record "
                                         "was lost and created again from its work message. Absent otherwise.")
    purged_from: int | None = Field(None, description="The DLQ stream sequence whose purge made the ad failed.")
    job_id: str | None = Field(None, description="The operator job (replay, purge, import, repair) that last "
                                                 "moved the ad (GET /v1/jobs/{id}).")


#: Longest ``errorClass`` / ``errorMessage`` of a DLQ entry (characters): the service cuts what it writes to them
#: (:func:`clip_error`); an imported entry's ``errorClass`` over its bound is refused and its ``errorMessage`` cut the
#: same way (``gamead_core.api.dlq_import``), so every entry an export holds imports again, an older gamead's too.
MAX_ERROR_CLASS = 200
MAX_ERROR_MESSAGE = 4000


def clip_text(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, ``…`` ending a cut one (so a cut text is exactly ``limit`` long). Pure."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def clip_error(error_class: str, message: str) -> tuple[str, str]:
    """``(error_class, message)`` cut to :data:`MAX_ERROR_CLASS` / :data:`MAX_ERROR_MESSAGE` chars: a DLQ entry's."""
    return clip_text(error_class, MAX_ERROR_CLASS), clip_text(message, MAX_ERROR_MESSAGE)


class DlqEntry(BaseModel):
    """One dead-lettered ad: everything needed to understand, replay or move it. Times follow
    :mod:`gamead_core.times` (no offset = UTC), so an imported entry always compares with the others."""

    model_config = _WIRE

    ad_id: str  #: the ad id (one entry per ad at a time; entries of gamead < issue 12 also carried it as ``id``)
    title: str
    priority: int
    attempts: int
    error_class: str  #: at most MAX_ERROR_CLASS characters as the service writes it (clip_error)
    error_message: str  #: at most MAX_ERROR_MESSAGE characters as the service writes it
    retryable: bool
    first_failure_at: UtcDatetime
    last_failure_at: UtcDatetime
    dead_at: UtcDatetime
    worker_id: str | None = None
    submitted_at: UtcDatetime
    ad: AdSubmission
    seq: int | None = None  #: sequence in the DLQ stream (set when read)
    source_seq: int | None = None  #: sequence the ad had in the work stream
    #: W3C ``traceparent`` of the attempt that dead-lettered the ad (tracing on): a replay's trace links to it
    traceparent: str | None = Field(None, max_length=128)
    #: times the ad was replayed from the DLQ before this death (None: never, a first death); ``attempts`` then
    #: count since ``replayed_at``, its last replay, while ``first_failure_at`` is its first failure ever
    replays: int | None = Field(None, ge=1)
    replayed_at: UtcDatetime | None = None
    #: the DLQ sequence its last replay came from (None: never replayed); with ``replays`` None, a replay by older
    #: code that kept no count (views say "replayed (count unknown)", attack29a F10)
    replay_of: int | None = None


class AdAccepted(BaseModel):
    """The ``202`` answer to ``POST /ads``."""

    model_config = _WIRE

    id: str
    status: AdStatus
    priority: int
    submitted_at: datetime
    duplicate: bool = False


def iso_z(when: datetime, timespec: str = "auto") -> str:
    """An aware UTC datetime → ``2026-11-24T12:00:00.123456Z`` (ISO 8601 with ``Z``: every time the API answers)."""
    return when.isoformat(timespec=timespec).replace("+00:00", "Z")


def utc_iso(epoch: float, timespec: str = "auto") -> str:
    """Epoch seconds → ``2026-11-24T12:00:00.123Z``."""
    return iso_z(datetime.fromtimestamp(epoch, timezone.utc), timespec)


def utcnow() -> datetime:
    """Now, aware UTC, on nats-server's clock (:mod:`gamead_core.clock`): every timestamp gamead writes."""
    return clock.utcnow()
