"""gamead's core: settings, domain types, errors, and the pure decisions (aging, backoff, scaling).

The I/O pieces (queue, store, API, worker runtime) live in sub-packages and are imported from there.
"""

from gamead_core.config import GameadSettings, load_settings
from gamead_core.errors import (
    ApiClientError,
    ApiUnreachable,
    ConfigError,
    Conflict,
    GameadError,
    NotFound,
    PermanentError,
    QueueFull,
    QueueUnavailable,
    RetryableError,
    TaskError,
    TopologyError,
)
from gamead_core.models import AdRecord, AdStatus, AdSubmission, Analysis, DlqEntry
from gamead_core.queue.aging import LevelHead, pull_order
from gamead_core.scaling.policy import Decision, Observation, ScalingPolicy
from gamead_core.worker.analyzer import analyze
from gamead_core.worker.backoff import backoff

__all__ = [
    "AdRecord",
    "AdStatus",
    "AdSubmission",
    "Analysis",
    "ApiClientError",
    "ApiUnreachable",
    "ConfigError",
    "Conflict",
    "Decision",
    "DlqEntry",
    "GameadError",
    "GameadSettings",
    "LevelHead",
    "NotFound",
    "Observation",
    "PermanentError",
    "QueueFull",
    "QueueUnavailable",
    "RetryableError",
    "ScalingPolicy",
    "TaskError",
    "TopologyError",
    "analyze",
    "backoff",
    "load_settings",
    "pull_order",
]
