"""The suite's Hypothesis profile (tests/conftest.py): an example slower than Hypothesis's default 200 ms deadline,
or inputs drawn slower than its 1 s, is no failure, as on a loaded machine (suite48: test_submit_path's 234 ms
example and test_idempotency's 4 inputs in 1.16 s each failed a run at load 14-23, and passed alone)."""

from __future__ import annotations

import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

#: longer than Hypothesis's default deadline (200 ms)
SLOW_EXAMPLE = 0.25
#: three such draws take longer than the 1 s of draws the too_slow health check allows with that deadline
SLOW_DRAW = 0.35


def _drawn_slowly(n: int) -> int:
    time.sleep(SLOW_DRAW)
    return n


@settings(max_examples=3)
@given(st.integers(0, 9).map(_drawn_slowly))
def test_a_slow_example_of_slowly_drawn_input_passes(n: int) -> None:
    """Without the profile: DeadlineExceeded (Test took 250 ms, which exceeds the deadline of 200.00ms)."""
    time.sleep(SLOW_EXAMPLE)
    assert 0 <= n <= 9


def test_the_default_profile_times_nothing() -> None:
    assert settings.default.deadline is None and HealthCheck.too_slow in settings.default.suppress_health_check
