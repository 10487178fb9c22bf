"""One settings object for every role: defaults < config.yaml < ``GAMEAD_*`` env vars < CLI flags.

The entry point builds a :class:`GameadSettings` once (``load_settings``) and passes sub-settings down;
nothing deeper in the code reads the environment. Nested keys use ``__`` in env vars, so
``worker.concurrency`` is ``GAMEAD_WORKER__CONCURRENCY``.

The package is split by job: the sections (``process``: API, NATS, queue, worker; ``operations``: DLQ, jobs,
doctor, audit, registry, records; ``access``: Redis, cache, rate limits, auth; ``local``: embedded server, logs,
CLI client), the settings object (``settings``) and how it is built (``load``). Import from here.
"""

from __future__ import annotations

from gamead_core.config.access import (
    ROLES,
    AuthSettings,
    CacheSettings,
    RateLimitSettings,
    RateSettings,
    RedisSettings,
    Role,
    TokenSettings,
)
from gamead_core.config.autoscaler import AutoscalerSettings, KubernetesScalerSettings
from gamead_core.config.load import (
    CONFIG_ENV,
    DEFAULT_CONFIG_FILE,
    MAX_CONFIG_BYTES,
    check_file,
    config_path,
    load_settings,
    differing_dump,
    masked_dump,
)
from gamead_core.config.local import ClientSettings, EmbeddedSettings, LogSettings
from gamead_core.config.operations import (
    AuditSettings,
    DlqSettings,
    DoctorSettings,
    JobSettings,
    RecordSettings,
    RegistrySettings,
)
from gamead_core.config.process import (
    AnalysisSettings,
    ApiSettings,
    FaultSettings,
    MetricsSettings,
    NatsSettings,
    QueueSettings,
    WorkerSettings,
)
from gamead_core.config.settings import GameadSettings

__all__ = [
    "CONFIG_ENV", "DEFAULT_CONFIG_FILE", "MAX_CONFIG_BYTES", "ROLES",
    "AnalysisSettings", "ApiSettings", "AuditSettings", "AuthSettings", "AutoscalerSettings", "CacheSettings", "KubernetesScalerSettings",
    "ClientSettings", "DlqSettings", "DoctorSettings", "EmbeddedSettings", "FaultSettings", "GameadSettings",
    "JobSettings", "LogSettings", "MetricsSettings", "NatsSettings", "QueueSettings", "RateLimitSettings",
    "RateSettings", "RecordSettings", "RedisSettings", "RegistrySettings", "Role", "TokenSettings",
    "WorkerSettings", "check_file", "config_path", "load_settings", "masked_dump", "differing_dump",
]
