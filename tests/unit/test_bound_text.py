"""The one sentence of a number out of range (:mod:`gamead_core.bound_text`, range46): its forms, pure."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from gamead_core.bound_text import Range, given_text, number_text, seconds_text
from gamead_core.config import load_settings
from gamead_core.durations import parse_duration
from gamead_core.errors import ConfigError
from tests.support import drop_gamead_env


@pytest.mark.parametrize(("span", "given", "sentence"), [
    (Range(1, 500), "0", "x must be 1 to 500, not 0"),
    (Range(0, 10_000), 1_000_000, "x must be 0 to 10,000, not 1,000,000"),
    (Range(1), "0", "x must be at least 1, not 0"),
    (Range(None, 5), 6, "x must be at most 5, not 6"),
    (Range(0.001, 1e6, or_zero=True), 1e9, "x must be 0 or 0.001 to 1,000,000, not 1,000,000,000"),
    (Range(0, 1, high_open=True), 1.0, "x must be at least 0 and less than 1, not 1"),
    (Range(0, 7 * 86400, low_open=True, seconds=True), "8d", "x must be more than 0 and at most 7d, not 8d"),
    (Range(0, 1, low_open=True, high_open=True), 0, "x must be more than 0 and less than 1, not 0"),
    (Range(1, 9, low_open=True, or_zero=True), 1, "x must be 0 or more than 1 and at most 9, not 1"),
    (Range(0.2, 60, seconds=True), "0", "x must be 0.2s to 1m, not 0"),
    (Range(0.001, 3600, seconds=True), 7200.0, "x must be 1ms to 1h, not 2h"),  # a setting's "2h", read already
    (Range(0.001, 3600, seconds=True), 1e300, "x must be 1ms to 1h, not 1e+300s"),
])
def test_the_sentence(span: Range, given: object, sentence: str) -> None:
    assert span.refusal("x", given) == sentence


def test_holds_refuses_inf_nan_and_the_open_bounds() -> None:
    span = Range(0, 1, low_open=True)
    assert span.holds(1) and span.holds(0.5) and not span.holds(0) and not span.holds(math.nan)
    assert Range(0.001, 10, or_zero=True).holds(0) and not Range(0.001, 10).holds(0)
    assert not Range(0).holds(math.inf)


@pytest.mark.parametrize("seconds", [0.001, 0.2, 1, 10, 60, 90, 600, 3600, 86400, 7 * 86400, 3650 * 86400])
def test_a_bound_in_seconds_reads_back_as_itself(seconds: float) -> None:
    assert parse_duration(seconds_text(seconds)) == pytest.approx(seconds)


def test_numbers_and_texts() -> None:
    assert [number_text(v) for v in (1024, 0.01, 1e6, -0.0, math.inf, 1.5e-9)] == \
        ["1,024", "0.01", "1,000,000", "0", "inf", "1.5e-09"]
    assert given_text(" 100000 ") == "100,000" and given_text("abc") == "abc" and given_text("8d", seconds=True) == "8d"


@pytest.mark.parametrize(("variable", "value", "says"), [
    # the floor of PositiveSeconds lives in the type, the ceiling on the field: both said (a first cut said
    # "at most 7d, not -1")
    ("GAMEAD_AUTOSCALER__MAX_AGE_SECONDS", "-1", "autoscaler.max_age_seconds (GAMEAD_AUTOSCALER__MAX_AGE_SECONDS=-1) "
                                                 "must be 1ms to 7d, not -1"),
    ("GAMEAD_QUEUE__ACK_WAIT", "0.5", "queue.ack_wait (GAMEAD_QUEUE__ACK_WAIT=0.5) must be 1s to 1d, not 0.5"),
    # a bound left out (gt/lt) is said in words, both sides alike (polish47: "0 to 7d (0 excluded)" read oddly)
    ("GAMEAD_RATELIMIT__RATE", "0", "ratelimit.rate (GAMEAD_RATELIMIT__RATE=0) must be more than 0 and at most "
                                    "1,000,000,000, not 0"),
    ("GAMEAD_AUTOSCALER__TOLERANCE", "1", "autoscaler.tolerance (GAMEAD_AUTOSCALER__TOLERANCE=1) must be at least 0 "
                                          "and less than 1, not 1"),
    # a dict of sections: its key steps into the section (gamead_core.config.fields.field_at), for the range and
    # for the value shown beside the variable, as every other setting's (reread48: the variable alone before)
    ("GAMEAD_RATELIMIT__ROLES__OPERATOR__BURST", "0", "ratelimit.roles.operator.burst "
                                                      "(GAMEAD_RATELIMIT__ROLES__OPERATOR__BURST=0) must be 1 to "
                                                      "1,000,000,000, not 0"),
])
def test_a_setting_past_its_bound_says_its_range(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, variable: str,
                                                 value: str, says: str) -> None:
    drop_gamead_env(monkeypatch, tmp_path)
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert str(caught.value) == f"invalid configuration: {says}"
