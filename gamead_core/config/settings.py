"""The settings object: :class:`GameadSettings`, one attribute per section, and its sources."""

from __future__ import annotations

from contextvars import ContextVar

from pydantic import model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from gamead_core.config.access import (
    AuthSettings,
    CacheSettings,
    RateLimitSettings,
    RedisSettings,
)
from gamead_core.config.autoscaler import AutoscalerSettings
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
    MetricsSettings,
    NatsSettings,
    QueueSettings,
    WorkerSettings,
)


class GameadSettings(BaseSettings):
    """Effective configuration of one gamead process, one attribute per section of ``config.yaml``.

    Built once at the entry point by :func:`load_settings` (defaults < the YAML file < ``GAMEAD_*`` env vars,
    nested with ``__`` < CLI flags) and passed down as sub-settings; nothing deeper reads the environment.
    Durations are seconds unless a name says ``_ms``; sizes are bytes. Invalid or contradictory values raise
    :class:`~gamead_core.errors.ConfigError` naming each bad key.
    """

    model_config = SettingsConfigDict(
        env_prefix="GAMEAD_", env_nested_delimiter="__", extra="ignore", validate_default=True
    )

    api: ApiSettings = ApiSettings()
    nats: NatsSettings = NatsSettings()
    queue: QueueSettings = QueueSettings()
    worker: WorkerSettings = WorkerSettings()
    analysis: AnalysisSettings = AnalysisSettings()
    embedded: EmbeddedSettings = EmbeddedSettings()
    log: LogSettings = LogSettings()
    client: ClientSettings = ClientSettings()
    dlq: DlqSettings = DlqSettings()
    registry: RegistrySettings = RegistrySettings()
    redis: RedisSettings = RedisSettings()
    cache: CacheSettings = CacheSettings()
    ratelimit: RateLimitSettings = RateLimitSettings()
    auth: AuthSettings = AuthSettings()
    autoscaler: AutoscalerSettings = AutoscalerSettings()
    records: RecordSettings = RecordSettings()
    jobs: JobSettings = JobSettings()
    doctor: DoctorSettings = DoctorSettings()
    audit: AuditSettings = AuditSettings()
    metrics: MetricsSettings = MetricsSettings()

    @model_validator(mode="after")
    def _keys_outlive_the_duplicate_window(self) -> GameadSettings:
        # an idempotency key is remembered by its ad's record and, for concurrent repeats, by JetStream's
        # duplicate window: a record must not vanish before the window closes
        if self.records.completed_max_age < self.queue.duplicate_window:
            raise ValueError(f"records.completed_max_age ({self.records.completed_max_age:g}s) must be at least "
                             f"queue.duplicate_window ({self.queue.duplicate_window:g}s)")
        # GAMEAD_DLQ and GAMEAD_AUDIT are created with queue.duplicate_window and their own max_age: JetStream
        # refuses a duplicate window longer than the max age (NATS 10052 "duplicates window can not be larger
        # then max age"), so the stream could not be created or updated
        for name, max_age in (("dlq", self.dlq.max_age), ("audit", self.audit.max_age)):
            if max_age < self.queue.duplicate_window:
                raise ValueError(f"{name}.max_age ({max_age:g}s) must be at least queue.duplicate_window "
                                 f"({self.queue.duplicate_window:g}s): JetStream refuses a duplicate window longer "
                                 f"than the max age of stream GAMEAD_{name.upper()}")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # first wins: flags (init) > GAMEAD_* env > the YAML file > the defaults (README "Configuration")
        yaml_source = _YAML_SOURCE.get()
        return (init_settings, env_settings) + ((yaml_source,) if yaml_source is not None else ())


#: The config file of the ``load_settings`` call in progress, already read by pydantic-settings' own
#: YAML source (the library reads its file from the class's ``model_config``, so a per-call ``--config``
#: is handed over here). Unset, as for a bare ``GameadSettings()``: no file.
_YAML_SOURCE: ContextVar[YamlConfigSettingsSource | None] = ContextVar("gamead_yaml_source", default=None)
