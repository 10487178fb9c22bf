"""Session 48: at load 17 a backoff property test (test_one_of_each) failed on hypothesis' 200 ms deadline, an
assertion on elapsed time that house rule 5 forbids. tests/conftest.py loads a profile without it, which a test's own
``@settings`` inherits for what it does not set."""

from __future__ import annotations

from hypothesis import HealthCheck, settings


def test_the_default_profile_times_nothing() -> None:
    assert settings.default.deadline is None and HealthCheck.too_slow in settings.default.suppress_health_check

