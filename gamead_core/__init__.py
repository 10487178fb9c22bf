"""gamead's core: settings, domain types, errors, and the pure decisions (aging, backoff, scaling).

The I/O pieces (queue, store, API, worker runtime) live in sub-packages and are imported from there.
The names below are imported on first use (PEP 562), so ``import gamead_core.errors`` — what every CLI
command needs — does not load pydantic, the analyser or the scaling policy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from gamead_core.deferred_imports import defer_all

defer_all()  # before any gamead module imports nats (gamead_core.deferred_imports)

#: public name → the module that defines it
_WHERE: dict[str, str] = {
    "GameadSettings": "gamead_core.config",
    "load_settings": "gamead_core.config",
    **dict.fromkeys(
        ("ApiClientError", "ApiUnreachable", "ConfigError", "Conflict", "GameadError", "NotFound",
         "PermanentError", "QueueFull", "QueueUnavailable", "RetryableError", "TaskError", "TopologyError"),
        "gamead_core.errors",
    ),
    **dict.fromkeys(("AdRecord", "AdStatus", "AdSubmission", "Analysis", "DlqEntry"), "gamead_core.models"),
    "LevelHead": "gamead_core.queue.aging",
    "pull_order": "gamead_core.queue.aging",
    "Observation": "gamead_core.scaling.policy",
    "ScalingDecision": "gamead_core.scaling.policy",
    "ScalingPolicy": "gamead_core.scaling.policy",
    "analyze": "gamead_core.worker.analyzer",
    "backoff": "gamead_core.worker.backoff",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'gamead_core' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_WHERE])


if TYPE_CHECKING:
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
    from gamead_core.scaling.policy import Observation, ScalingDecision, ScalingPolicy
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
    "ScalingDecision",
    "ScalingPolicy",
    "TaskError",
    "TopologyError",
    "analyze",
    "backoff",
    "load_settings",
    "pull_order",
]
