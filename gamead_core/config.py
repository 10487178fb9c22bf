"""One settings object for every role: defaults < config.yaml < ``GAMEAD_*`` env vars < CLI flags.

The entry point builds a :class:`GameadSettings` once (``load_settings``) and passes sub-settings down;
nothing deeper in the code reads the environment. Nested keys use ``__`` in env vars, so
``worker.concurrency`` is ``GAMEAD_WORKER__CONCURRENCY``.
"""

from __future__ import annotations

import os
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from gamead_core.errors import ConfigError
from gamead_core.scaling.settings import AutoscalerSettings

CONFIG_ENV = "GAMEAD_CONFIG"
DEFAULT_CONFIG_FILE = "config.yaml"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ApiSettings(_Section):
    host: str = Field("127.0.0.1", description="Address `gamead serve` binds to.")
    port: int = Field(8080, ge=0, le=65535, description="Port `gamead serve` listens on.")
    max_body_bytes: int = Field(64 * 1024, ge=1024, description="Largest request body accepted.")
    publish_timeout: float = Field(2.0, gt=0, description="Seconds to wait for JetStream to ack a submit.")
    list_scan_limit: int = Field(
        10_000, ge=100, description="Most ad records `GET /ads` scans to build one filtered page."
    )


class NatsSettings(_Section):
    url: str | None = Field(None, description="NATS server URL(s), comma separated; unset = embedded server.")
    user: str | None = None
    password: SecretStr | None = None
    token: SecretStr | None = None
    tls_ca: str | None = Field(None, description="CA bundle to verify the server's certificate.")
    tls_cert: str | None = None
    tls_key: str | None = None
    connect_timeout: float = Field(2.0, gt=0)
    request_timeout: float = Field(2.0, gt=0, description="Timeout of JetStream API calls.")


class QueueSettings(_Section):
    aging_step: float = Field(10.0, gt=0, description="Seconds of waiting that lift an ad one priority level.")
    ack_wait: float = Field(30.0, gt=0, description="Seconds before an unacknowledged ad is redelivered.")
    duplicate_window: float = Field(120.0, gt=0, description="Window in which a repeated message id is dropped.")
    max_msgs: int = Field(1_000_000, description="Most ads waiting in the work stream (-1 = unlimited).")
    max_bytes: int = Field(1024**3, description="Most bytes in the work stream (-1 = unlimited).")
    replicas: int = Field(1, ge=1, le=5, description="Stream replicas (3 in a production cluster).")
    head_cache_ms: int = Field(200, ge=0, description="How long a worker reuses its view of queue heads.")
    idle_poll: float = Field(0.5, gt=0, description="Longest a worker waits between polls of an empty queue.")


class FaultSettings(_Section):
    """Fault injection for drills. Off unless ``rate`` > 0; logged loudly when on."""

    rate: float = Field(0.0, ge=0, le=1, description="Share of matching ads that fail (0 = off).")
    match: str | None = Field(None, description="Regex on the title; only matching ads can fail.")
    mode: Literal["retryable", "permanent", "crash", "hang"] = Field(
        "retryable", description="retryable error, permanent error, crash (hard exit) or hang (past task_timeout)."
    )


class WorkerSettings(_Section):
    concurrency: int = Field(4, ge=1, le=1024, description="Ads one worker process analyses at once.")
    drain_timeout: float = Field(25.0, ge=0, description="Seconds to finish in-flight ads on SIGTERM.")
    max_attempts: int = Field(5, ge=1, le=100, description="Deliveries before an ad goes to the DLQ.")
    task_timeout: float = Field(60.0, gt=0, description="Seconds one analysis may take; longer is a failed attempt.")
    backoff_base: float = Field(1.0, gt=0, description="First retry delay ceiling in seconds (full jitter).")
    backoff_cap: float = Field(60.0, gt=0, description="Largest retry delay in seconds.")
    faults: FaultSettings = FaultSettings()


class DlqSettings(_Section):
    max_age: float = Field(14 * 86400, gt=0, description="Seconds a dead-lettered ad is kept (default 14 days).")
    max_msgs: int = Field(1_000_000, description="Most entries kept in the DLQ (-1 = unlimited).")
    replay_rate: float = Field(100.0, gt=0, description="Default replays per second.")
    scan_limit: int = Field(
        100_000, ge=10, description="Most entries one list or dry-run request reads; the answer says if it stopped."
    )
    scan_time: float = Field(2.0, gt=0, description="Most seconds one list or dry-run request spends reading.")


class JobSettings(_Section):
    """Operator jobs (DLQ replay, purge, import): server-side, resumable, kept in KV bucket ``gamead_jobs``."""

    retention: float = Field(7 * 86400, gt=0, description="Seconds a job's document is kept after its last change.")
    max_bytes: int = Field(256 * 1024**2, ge=1024**2, description="Most bytes the jobs bucket holds.")
    lease: float = Field(15.0, gt=0, description="A job whose runner is silent this long is resumed elsewhere.")
    follow_timeout: float = Field(
        60.0, ge=0, description="Seconds a replay job follows its replayed ads after the last replay."
    )
    max_resumes: int = Field(3, ge=0, description="Times a job is resumed after its runner died; then interrupted.")


class RegistrySettings(_Section):
    heartbeat_interval: float = Field(2.0, gt=0, description="Seconds between two heartbeats of a node.")
    ttl: float = Field(10.0, gt=0, description="A node silent this long disappears from the registry.")


class RedisSettings(_Section):
    url: str | None = Field(None, description="redis:// URL of Redis 6+ or Valkey; unset = in-process fallbacks.")
    socket_timeout: float = Field(0.25, gt=0, description="Seconds per Redis command before it counts as failed.")
    connect_timeout: float = Field(0.5, gt=0)
    max_connections: int = Field(64, ge=1)
    breaker_failures: int = Field(3, ge=1, description="Consecutive failures that open the circuit breaker.")
    breaker_reset: float = Field(5.0, gt=0, description="Seconds the breaker stays open before a half-open probe.")


class CacheSettings(_Section):
    ttl: float = Field(300.0, gt=0, description="Seconds a terminal ad record stays cached in Redis.")


class RateSettings(_Section):
    rate: float = Field(gt=0, description="Requests per second refilled into the bucket.")
    burst: int = Field(ge=1, description="Bucket size: requests allowed at once.")


class RateLimitSettings(_Section):
    enabled: bool | None = Field(
        None, description="Limit requests. Unset = on unless the API binds to a loopback address (one machine)."
    )
    rate: float = Field(200.0, gt=0, description="Requests per second per API key (per IP when anonymous).")
    burst: int = Field(400, ge=1, description="Bucket size per API key.")
    roles: dict[str, RateSettings] = Field(
        default_factory=dict, description="Overrides per role, e.g. {operator: {rate: 50, burst: 100}}."
    )
    admin: RateSettings = Field(
        default_factory=lambda: RateSettings(rate=10, burst=20), description="Limit of /v1/* operator routes."
    )


class TokenSettings(_Section):
    name: str
    token: SecretStr
    role: Literal["submitter", "operator"]


class AuthSettings(_Section):
    enabled: bool | None = Field(
        None, description="Require tokens. Unset = required unless the API binds to a loopback address."
    )
    tokens: list[TokenSettings] = Field(default_factory=list, description="API tokens: {name, token, role}.")


class AnalysisSettings(_Section):
    simulated_latency_ms: int = Field(0, ge=0, le=600_000, description="Extra I/O-like delay per analysis.")


class EmbeddedSettings(_Section):
    data_dir: Path = Field(Path(".gamead"), description="Where `gamead up` keeps NATS data and logs.")
    nats_port: int = Field(0, ge=0, le=65535, description="Port of the embedded nats-server (0 = free port).")
    sync_always: bool = Field(False, description="fsync before every ack (survives power loss; ~10x slower).")


class LogSettings(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["json", "text"] = Field("json", description="json = one JSON object per line.")


class ClientSettings(_Section):
    api_url: str = Field("http://127.0.0.1:8080", description="API the CLI talks to (env GAMEAD_API_URL).")
    token: SecretStr | None = Field(None, description="API token the CLI sends (env GAMEAD_TOKEN).")
    timeout: float = Field(10.0, gt=0)


class _YamlSource(PydanticBaseSettingsSource):
    """Reads the YAML file chosen by ``--config`` / ``GAMEAD_CONFIG`` / ``./config.yaml``."""

    def __init__(self, settings_cls: type[BaseSettings], data: dict[str, Any]) -> None:
        super().__init__(settings_cls)
        self._data = data

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:  # pragma: no cover
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._data)


class GameadSettings(BaseSettings):
    """Effective configuration of one gamead process."""

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
    jobs: JobSettings = JobSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        yaml_source = _YamlSource(settings_cls, _YAML_DATA.get())
        return (init_settings, env_settings, yaml_source)


#: The YAML data of the ``load_settings`` call in progress (a settings source cannot take arguments).
_YAML_DATA: ContextVar[dict[str, Any]] = ContextVar("gamead_yaml_data", default={})


def config_path(explicit: str | Path | None = None) -> Path | None:
    """The config file in force: ``--config``, else ``$GAMEAD_CONFIG``, else ``./config.yaml`` if present."""
    if explicit:
        return Path(explicit)
    env = os.environ.get(CONFIG_ENV)
    if env:
        return Path(env)
    default = Path(DEFAULT_CONFIG_FILE)
    return default if default.is_file() else None


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from exc
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top level")
    return data


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _env_overrides() -> dict[str, Any]:
    """Env vars that are not ``GAMEAD_<SECTION>__<KEY>`` but that operators expect to work."""
    out: dict[str, Any] = {}
    if url := os.environ.get("GAMEAD_API_URL"):
        out.setdefault("client", {})["api_url"] = url
    if token := os.environ.get("GAMEAD_TOKEN"):
        out.setdefault("client", {})["token"] = token
    return out


def load_settings(config: str | Path | None = None, **overrides: Any) -> GameadSettings:
    """Build the settings: defaults < YAML file < env < ``overrides`` (CLI flags, nested dicts).

    ``overrides`` values of ``None`` are ignored so CLI options can pass their unset defaults through.
    Raises :class:`ConfigError` with every problem named by its dotted key.
    """
    path = config_path(config)
    data = _read_yaml(path) if path else {}
    init = _deep_merge(_env_overrides(), _drop_none(overrides))
    token = _YAML_DATA.set(data)
    try:
        # Flags (init) win over env; env wins over YAML. Env-derived aliases sit just above YAML.
        settings = GameadSettings(**init) if init else GameadSettings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        source = f" (from {path})" if path else ""
        raise ConfigError(f"invalid configuration{source}: {problems}") from exc
    finally:
        _YAML_DATA.reset(token)
    return settings


def _drop_none(values: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            nested = _drop_none(value)
            if nested:
                out[key] = nested
        elif value is not None:
            out[key] = value
    return out


def masked_dump(settings: GameadSettings) -> dict[str, Any]:
    """The effective configuration as plain data with every secret replaced by ``'********'``."""

    def mask(value: Any) -> Any:
        if isinstance(value, SecretStr):
            return "********"
        if isinstance(value, BaseModel):
            return {k: mask(getattr(value, k)) for k in type(value).model_fields}
        if isinstance(value, dict):
            return {k: mask(v) for k, v in value.items()}
        if isinstance(value, list):
            return [mask(v) for v in value]
        if isinstance(value, Path):
            return str(value)
        return value

    return mask(settings)
