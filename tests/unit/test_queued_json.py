"""Issue 14.3 without servers: the batch path's hand-built bytes are the model's own, byte for byte.

* a fresh ``queued`` record (``store.queued_json.queued_records``) is ``encode(AdRecord(...))`` for any valid ad
  (hypothesis: texts with quotes, backslashes, tabs, line ends, non-ASCII and astral characters, padded texts,
  empty and full lists, every priority), any submit time (whole seconds included: no fraction written);
* the ids of a batch (``ad_ids.ulid_texts``, one base32 pass) are the ULIDs ``ulid_text`` writes;
* the answer of ``POST /ads/batch`` (``api.batch_answer``) is ``orjson.dumps`` of the object the route built
  before, for every kind of result.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st
from ulid import ULID

from gamead_core.ad_ids import new_ad_ids, ulid_text, ulid_texts
from gamead_core.api.batch_answer import answer_bytes, error, error_of, result_of
from gamead_core.errors import GameadError, QueueFull
from gamead_core.intake import Accepted, Queued
from gamead_core.models import AdRecord, AdStatus, AdSubmission
from gamead_core.store import queued_json
from gamead_core.store.ads import encode
from tests.ad_strategies import ad_text
from tests.support import ad

_ADS = st.builds(
    lambda title, description, genre, audience, visuals, cta, duration, priority: {
        "title": title, "description": description, "genre": genre, "targetAudience": audience,
        "visualElements": visuals, "callToAction": cta, "duration": duration, "priority": priority},
    ad_text(40), ad_text(80), ad_text(20), st.lists(ad_text(12), max_size=4), st.lists(ad_text(12), max_size=4), ad_text(30),
    st.integers(1, 600), st.integers(1, 5))
_TIMES = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)).map(
    lambda t: t.replace(tzinfo=timezone.utc))


def test_the_layout_check_passed_so_the_records_are_built_by_hand() -> None:
    assert queued_json._HAND  # else every record below would come from the model and the test prove nothing


@settings(max_examples=150)
@given(st.lists(_ADS, min_size=1, max_size=5), _TIMES)
def test_a_queued_record_built_by_hand_is_the_models_bytes(items: list[dict[str, Any]], when: datetime) -> None:
    # validated as the batch route validates them (strict, from the JSON text)
    ads = [AdSubmission.model_validate_json(orjson.dumps(item), strict=True) for item in items]
    ids = new_ad_ids(len(ads))
    expected = [encode(AdRecord(id=i, status=AdStatus.QUEUED, priority=a.priority, submitted_at=when, ad=a))
                for i, a in zip(ids, ads, strict=True)]
    assert queued_json.queued_records(ids, when, ads) == expected


def test_whole_seconds_and_the_defaults_are_written_as_the_model_writes_them() -> None:
    whole = datetime(2026, 11, 30, 12, 0, 0, tzinfo=timezone.utc)
    plain = AdSubmission.model_validate(ad("Defaults"))  # lists and priority left to their defaults
    record = AdRecord(id="01jdsample0000000000000000", status=AdStatus.QUEUED, priority=plain.priority,
                      submitted_at=whole, ad=plain)
    built = queued_json.queued_records([record.id], whole, [plain])
    assert built == [encode(record)]
    assert b'"submittedAt":"2026-11-30T12:00:00Z"' in built[0]


@given(st.integers(min_value=0, max_value=(1 << 48) - 1), st.lists(st.binary(min_size=10, max_size=10), max_size=5))
def test_a_batchs_ids_are_the_ulids_of_its_time_and_noise(ms: int, parts: list[bytes]) -> None:
    ids = ulid_texts(ms, b"".join(parts))
    assert ids == [ulid_text(ms << 80 | int.from_bytes(p, "big")) for p in parts]
    assert all(str(ULID.from_str(i.upper())).lower() == i for i in ids)


def _before(outcome: Any) -> dict[str, Any]:
    """A result as the route built it before its answer was written as bytes."""
    if isinstance(outcome, GameadError):
        return error_of(outcome)
    if isinstance(outcome, dict):
        return outcome
    if isinstance(outcome, Queued):
        ad_id, status, priority, when = outcome.id, "queued", outcome.priority, outcome.submitted_at
    else:
        rec = outcome.record
        ad_id, status, priority, when = rec.id, rec.status.value, rec.priority, rec.submitted_at
    return {"id": ad_id, "status": status, "priority": priority,
            "submittedAt": when.isoformat().replace("+00:00", "Z"), "duplicate": outcome.duplicate}


def test_the_answer_bytes_are_the_json_of_the_results_as_before() -> None:
    now = datetime(2026, 11, 30, 12, 0, 0, 500, tzinfo=timezone.utc)
    whole = now.replace(microsecond=0)
    ids = new_ad_ids(3)
    first = AdRecord(id=ids[2], status=AdStatus.COMPLETED, priority=1, submitted_at=now - timedelta(hours=1),
                     ad=AdSubmission.model_validate(ad("Earlier", priority=1)))
    outcomes: list[Any] = [
        Queued(ids[0], 3, now, False), Queued(ids[1], 5, whole, True), Accepted(first, duplicate=True),
        QueueFull("the stream is full", details={"stream": "GAMEAD_ADS"}),
        error("validation_failed", "title: must have a character that shows «é»", [{"loc": "title"}]),
        error("rate_limited", "rate limit reached", {"retryAfter": 0.25})]
    stamps: dict[datetime, bytes] = {}
    body = answer_bytes([result_of(o, stamps) for o in outcomes], accepted=3, duplicates=2)
    expected = {"results": [_before(o) for o in outcomes], "accepted": 3, "duplicates": 2, "rejected": 3}
    assert body == orjson.dumps(expected)
    assert orjson.loads(body)["results"][0]["status"] == "queued"
