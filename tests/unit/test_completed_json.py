"""Issue 14 without servers: the worker's hand-built ``completed`` record is the model's own bytes.

``worker.completed_json.completed_bytes(started, now, analysis)`` must be ``encode(started.model_copy(update=
{completed, now, analysis, retryAt None, suspect None}))`` byte for byte (what ``GET /ads/{id}`` and ``gamead
doctor`` read), for any valid ad (hypothesis: texts with quotes, backslashes, tabs, line ends, non-ASCII and astral
characters), the analyser's real analysis of it and arbitrary analyses (any score and weight in range, texts with
escapes), any times (whole seconds included), and records the hand-built path leaves to the model (an earlier
error, a retry time, an idempotency key, a replay, a time with an offset).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from gamead_core.models import (
    AdError,
    AdRecord,
    AdStatus,
    AdSubmission,
    Analysis,
    ComponentScore,
)
from gamead_core.store.ads import decode, encode
from gamead_core.worker import completed_json
from gamead_core.worker.analyzer import analyze
from gamead_core.worker.transitions import started_record
from tests.ad_strategies import ad_text
from tests.support import ad

_ADS = st.builds(
    lambda title, description, genre, audience, visuals, cta, duration, priority: AdSubmission.model_validate_json(
        orjson.dumps({"title": title, "description": description, "genre": genre, "targetAudience": audience,
                      "visualElements": visuals, "callToAction": cta, "duration": duration, "priority": priority}),
        strict=True),
    ad_text(40), ad_text(80), ad_text(20), st.lists(ad_text(12), max_size=4), st.lists(ad_text(12), max_size=4), ad_text(30),
    st.integers(1, 600), st.integers(1, 5))
_TIMES = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)).map(
    lambda t: t.replace(tzinfo=timezone.utc))
_SCORES = st.floats(min_value=0, max_value=10, allow_nan=False)
_ANALYSES = st.builds(
    lambda score, parts, strengths, tips, version: Analysis(
        effectiveness_score=score, components=[ComponentScore(name=n, score=s, weight=w, reason=r)
                                               for n, s, w, r in parts],
        strengths=strengths, improvement_suggestions=tips, analyzer_version=version),
    _SCORES, st.lists(st.tuples(ad_text(12), _SCORES, st.floats(0, 1, allow_nan=False), ad_text(40)), max_size=7),
    st.lists(ad_text(30), max_size=3), st.lists(ad_text(30), max_size=3), ad_text(10))


def _started(ad_: AdSubmission, submitted: datetime, began: datetime, attempts: int, worker: str, delivery: str,
             **extra: Any) -> AdRecord:
    queued = decode(encode(AdRecord(id="01jdsample0000000000000000", status=AdStatus.QUEUED, priority=ad_.priority,
                                    submitted_at=submitted, ad=ad_)))  # as the worker reads it: from the bytes
    return queued.model_copy(update={"status": AdStatus.PROCESSING, "started_at": began, "attempts": attempts,
                                     "worker_id": worker, "delivery": delivery, **extra})


def _model(started: AdRecord, now: datetime, analysis: Analysis) -> bytes:
    return encode(started.model_copy(update={"status": AdStatus.COMPLETED, "completed_at": now,
                                             "analysis": analysis, "retry_at": None, "suspect": None}))


def test_the_layout_check_passed_so_the_records_are_built_by_hand() -> None:
    assert completed_json._HAND  # else every record below would come from the model and the test prove nothing


@settings(max_examples=150)
@given(_ADS, _TIMES, _TIMES, _TIMES, st.integers(1, 9), st.booleans(), st.data())
def test_a_completed_record_built_by_hand_is_the_models_bytes(ad_: AdSubmission, submitted: datetime,
                                                               began: datetime, now: datetime, attempts: int,
                                                               real: bool, data: st.DataObject) -> None:
    analysis = analyze(ad_) if real else data.draw(_ANALYSES)
    started = _started(ad_, submitted, began, attempts, "host-1-abcdef", f"{attempts * 7}.{attempts}",
                       suspect=data.draw(st.sampled_from([None, True])))
    built = completed_json.completed_bytes(started, now, analysis)
    assert built == _model(started, now, analysis)
    assert decode(built) == completed_json.completed_record(started, now, analysis)


def test_whole_seconds_are_written_without_a_fraction_as_the_model_writes_them() -> None:
    whole = datetime(2026, 11, 30, 12, 0, 0, tzinfo=timezone.utc)
    plain = AdSubmission.model_validate(ad("Defaults"))
    started = _started(plain, whole, whole, 1, "w", "3.1")
    built = completed_json.completed_bytes(started, whole, analyze(plain))
    assert built == _model(started, whole, analyze(plain))
    assert b'"completedAt":"2026-11-30T12:00:00Z"' in built


def test_records_the_hand_built_path_does_not_know_are_encoded_by_the_model() -> None:
    when = datetime(2026, 11, 30, 12, 0, 0, 250, tzinfo=timezone.utc)
    plain = AdSubmission.model_validate(ad("Rare"))
    analysis = analyze(plain)
    rare = [
        {"error": AdError(error_class="TimeoutError", message="slow \"x\"", at=when)},
        {"retry_at": when, "first_failure_at": when - timedelta(seconds=3)},
        {"idempotency_key": "k-1", "idempotency_fingerprint": "ab" * 32},
        {"replay_of": 12, "job_id": "job-1", "lost_in": "w:1@t", "purged_from": 3},
        {"submitted_at": datetime(2026, 11, 30, 13, 0, tzinfo=timezone(timedelta(hours=1)))},
    ]
    for extra in rare:
        started = _started(plain, when, when, 2, "w", "9.2", **extra)
        assert completed_json.completed_bytes(started, when, analysis) == _model(started, when, analysis), extra


class _Scored(ComponentScore):
    """A hook's own component kind, with a field of its own."""

    source: str = "hook"


def test_an_analysis_a_hook_changed_is_encoded_as_the_model_encodes_it() -> None:
    """A hook may set an int score (the model writes ``7.0``, a hand-built record ``7``) or add a component of its
    own kind (its extra field would be written from ``__dict__``): such records come from the model (reviewer V8)."""
    when = datetime(2026, 11, 30, 12, 0, 0, 250, tzinfo=timezone.utc)
    plain = AdSubmission.model_validate(ad("Hooked"))
    started = _started(plain, when, when, 1, "w", "4.1")
    int_score = analyze(plain)
    int_score.effectiveness_score = 7
    int_weight = analyze(plain)
    int_weight.components[0].weight = 1
    extra_kind = analyze(plain)
    extra_kind.components.append(_Scored(name="hook", score=1.0, weight=0.0, reason="added by a hook"))
    for analysis in (int_score, int_weight, extra_kind):
        assert completed_json.completed_bytes(started, when, analysis) == _model(started, when, analysis)


@settings(max_examples=150)
@given(_ADS, _TIMES, _TIMES, _TIMES, st.integers(0, 9), st.booleans(), st.data())
def test_the_batch_starts_bytes_without_the_started_record_are_the_same(
        ad_: AdSubmission, submitted: datetime, began: datetime, now: datetime, attempts: int, real: bool,
        data: st.DataObject) -> None:
    """``completed_bytes_of`` (the batch start's path, drain46: no ``processing`` record built) writes what
    ``completed_bytes`` writes for the record ``started_record`` makes at the same start time, for any queued
    record, the rare ones the model encodes included."""
    analysis = analyze(ad_) if real else data.draw(_ANALYSES)
    when = datetime(2026, 11, 30, 12, 0, 0, 250, tzinfo=timezone.utc)
    extra = data.draw(st.sampled_from([{}, {"suspect": True}, {"delivery": "3.1"}, {"retry_at": when},
                                       {"error": AdError(error_class="TimeoutError", message="slow", at=when)},
                                       {"replay_of": 12, "job_id": "job-1"}]))
    queued = decode(encode(AdRecord(id="01jdsample0000000000000000", status=AdStatus.QUEUED, priority=ad_.priority,
                                    submitted_at=submitted, ad=ad_, attempts=attempts, **extra)))
    started = started_record(queued, "17.1", "host-1-abcdef", at=began)
    assert started.started_at == began
    assert completed_json.completed_bytes_of(queued, "17.1", "host-1-abcdef", began, now, analysis) == \
        completed_json.completed_bytes(started, now, analysis)
