"""The curated public API of gamead_core is pinned: changing it is a deliberate act."""

import gamead_core


def test_public_api_is_pinned() -> None:
    assert sorted(gamead_core.__all__) == [
        "AdRecord", "AdStatus", "AdSubmission", "Analysis", "ApiClientError", "ApiUnreachable", "ConfigError",
        "Conflict", "DlqEntry", "GameadError", "GameadSettings", "LevelHead", "NotFound",
        "Observation", "PermanentError", "QueueFull", "QueueUnavailable", "RetryableError", "ScalingDecision",
        "ScalingPolicy",
        "TaskError", "TopologyError", "analyze", "backoff", "load_settings", "pull_order",
    ]
    for name in gamead_core.__all__:
        assert getattr(gamead_core, name) is not None


def test_every_error_is_a_gamead_error_with_a_code() -> None:
    errors = [getattr(gamead_core, n) for n in gamead_core.__all__ if n.endswith(("Error", "Unavailable",
                                                                                  "Full", "Found", "Conflict",
                                                                                  "Unreachable"))]
    codes = set()
    for cls in errors:
        assert issubclass(cls, gamead_core.GameadError)
        codes.add(cls.code)
    assert len(codes) == len(errors)  # each class has its own stable code
