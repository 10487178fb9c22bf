"""Pure retry and DLQ logic: backoff, fault picking, DLQ filters, the replay stop rule, time parsing."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gamead_cli.commands.dlq_filters import parse_when
from gamead_core.config import FaultSettings
from gamead_core.jobs.policy import failure_rate_exceeded
from gamead_core.errors import GameadError
from gamead_core.models import DlqEntry
from gamead_core.queue.dlq import DlqFilter
from gamead_core.worker.backoff import backoff, backoff_ceiling
from gamead_core.worker.faults import pick_fault

from tests.support import submission


def test_ceiling_doubles_from_the_base_up_to_the_cap() -> None:
    assert [backoff_ceiling(n, base=1, cap=10) for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]
    assert backoff_ceiling(0, base=1, cap=10) == 0
    assert backoff_ceiling(10_000, base=1, cap=60) == 60  # no overflow on absurd attempt counts


@given(attempt=st.integers(1, 100), base=st.floats(0.01, 10), cap=st.floats(0.01, 600))
def test_full_jitter_stays_inside_its_window(attempt: int, base: float, cap: float) -> None:
    delay = backoff(attempt, base=base, cap=cap)
    assert 0 <= delay <= backoff_ceiling(attempt, base=base, cap=cap) <= cap


def test_full_jitter_spans_the_whole_window() -> None:
    assert backoff(3, base=1, cap=60, uniform=lambda lo, hi: lo) == 0
    assert backoff(3, base=1, cap=60, uniform=lambda lo, hi: hi) == 4


def test_faults_are_off_by_default_and_follow_match_and_rate() -> None:
    assert pick_fault(FaultSettings(), "Poison", "a", 1) is None
    on = FaultSettings(rate=1, match="^Poison", mode="permanent")
    assert pick_fault(on, "Poison Pill", "a", 1).mode == "permanent"  # type: ignore[union-attr]
    assert pick_fault(on, "Fine Ad", "a", 1) is None
    half = FaultSettings(rate=0.5)
    hits = sum(pick_fault(half, "x", f"ad{i}", 1) is not None for i in range(2000))
    assert 850 < hits < 1150
    assert pick_fault(half, "x", "ad7", 2) == pick_fault(half, "x", "ad7", 2)  # deterministic per attempt


NOW = datetime(2026, 11, 24, 12, 0, tzinfo=timezone.utc)


def entry(**kw: object) -> DlqEntry:
    ad = submission()
    base = dict(ad_id="a", title="t", priority=3, attempts=5, error_class="TaskTimeout",
                error_message="analysis took longer", retryable=True, first_failure_at=NOW, last_failure_at=NOW,
                dead_at=NOW, submitted_at=NOW, ad=ad)
    return DlqEntry(**{**base, **kw})


def test_dlq_filters_narrow_by_each_field() -> None:
    e = entry()
    assert DlqFilter().matches(e)
    assert DlqFilter(error_class="TaskTimeout").matches(e) and not DlqFilter(error_class="X").matches(e)
    assert DlqFilter(message="long(er)?$").matches(e) and not DlqFilter(message="^longer").matches(e)
    assert DlqFilter(priority=3).matches(e) and not DlqFilter(priority=1).matches(e)
    assert DlqFilter(since=NOW).matches(e) and not DlqFilter(since=NOW + timedelta(seconds=1)).matches(e)
    assert DlqFilter(until=NOW + timedelta(seconds=1)).matches(e) and not DlqFilter(until=NOW).matches(e)
    assert DlqFilter(ids=frozenset({"a"})).matches(e) and not DlqFilter(ids=frozenset({"b"})).matches(e)


def test_replay_stops_only_on_enough_evidence() -> None:
    assert not failure_rate_exceeded(0, 4, 0.5)  # too few finished to judge
    assert failure_rate_exceeded(1, 4, 0.5)
    assert not failure_rate_exceeded(3, 2, 0.5)
    assert not failure_rate_exceeded(0, 100, None)  # no threshold, never stops


def test_parse_when_reads_ages_and_iso_times() -> None:
    assert parse_when("2h", now=NOW) == (NOW - timedelta(hours=2)).isoformat()
    assert parse_when("7d", now=NOW) == (NOW - timedelta(days=7)).isoformat()
    assert parse_when("2026-11-24T10:00") == "2026-11-24T10:00:00+00:00"
    assert parse_when(None) is None
    with pytest.raises(GameadError, match="cannot read time"):
        parse_when("yesterday")


@pytest.mark.parametrize("text", ["0001-01-01T00:00:00+14:00", "0001-01-01T00:00:00+00:01", "9999-12-31T23:59:59-01:00",
                                  "0001-01-01T00:00:00-14:00", "9999-12-31T23:59:59+14:00", "2026-11-24T10:00",
                                  "2026-11-24", "2026-11-24T10:00:00Z", "10:00", "2026-13-01"])
def test_the_cli_refuses_a_time_exactly_when_the_api_would(text: str) -> None:
    """``--since``/``--until`` are read by the API's own rule (gamead_core.times.read_utc): a time the API answers 422
    is exit 2 before sending (``0001-01-01T00:00:00+14:00`` was sent, and the 422 made exit 1)."""
    from pydantic import TypeAdapter, ValidationError

    from gamead_core.times import UtcDatetime

    try:
        api = TypeAdapter(UtcDatetime).validate_python(text)
    except ValidationError:
        api = None
    try:
        cli = parse_when(text)
    except GameadError:
        cli = None
    assert cli == (api.isoformat() if api is not None else None)
