"""One settings object for every role: defaults < config.yaml < ``GAMEAD_*`` env vars < CLI flags.

The entry point builds a :class:`GameadSettings` once (``load_settings``) and passes sub-settings down;
nothing deeper in the code reads the environment. Nested keys use ``__`` in env vars, so
``worker.concurrency`` is ``GAMEAD_WORKER__CONCURRENCY``.
"""

from __future__ import annotations

import json
import os
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, SettingsError

from gamead_core.errors import ConfigError
from gamead_core.redact import redact_url
from gamead_core.scaling.settings import AutoscalerSettings

CONFIG_ENV = "GAMEAD_CONFIG"
DEFAULT_CONFIG_FILE = "config.yaml"
#: Largest config file read (bytes): a config is a few KiB; `--config /dev/zero` must not fill memory.
MAX_CONFIG_BYTES = 1024 * 1024


class _Section(BaseModel):
    """A section of the config file (``api:``, ``queue:``…): an unknown key is refused (``extra="forbid"``),
    so a typo is an error that names it, not a silently ignored setting."""

    model_config = ConfigDict(extra="forbid")


class ApiSettings(_Section):
    """``api:`` – the HTTP API of ``gamead serve``: where it listens, what it accepts (body size, HTTP framing
    limits: lengths in bytes, times in seconds), and how often it checks NATS, the topology and storage.
    Invalid values raise :class:`~gamead_core.errors.ConfigError` from :func:`load_settings`."""

    host: str = Field("127.0.0.1", description="Address `gamead serve` binds to.")
    port: int = Field(8080, ge=0, le=65535, description="Port `gamead serve` listens on.")
    max_body_bytes: int = Field(64 * 1024, ge=1024, description="Largest request body accepted.")
    publish_timeout: float = Field(2.0, gt=0, description="Seconds to wait for JetStream to ack a submit.")
    list_scan_limit: int = Field(
        10_000, ge=100, description="Most ad records `GET /ads` scans to build one filtered page."
    )
    # --- HTTP framing limits (enforced by gamead_core.api.http_limits before any handler runs) ---------
    max_request_line_bytes: int = Field(
        8 * 1024, ge=256, description="Longest request target (path and query); longer → 414."
    )
    max_header_bytes: int = Field(
        16 * 1024, ge=1024, description="Most bytes of request line and headers together; more → 431."
    )
    max_headers: int = Field(100, ge=8, description="Most header fields in one request; more → 431.")
    read_timeout: float = Field(
        15.0, gt=0, description="Seconds a client may take to send one whole request (line, headers, body), "
        "counted from the connection's opening or the request's first byte; slower → 408 and close."
    )
    keep_alive_timeout: float = Field(
        5.0, gt=0, description="Seconds an idle keep-alive connection is kept open between two requests."
    )
    nats_unhealthy_after: float = Field(
        60.0, gt=0, description="`/healthz` fails once NATS has not answered for this many seconds (restart me)."
    )
    topology_check_interval: float = Field(
        5.0, gt=0, description="Seconds between two checks of the JetStream topology (missing objects recreated)."
    )
    storage_probe_interval: float = Field(
        5.0, gt=0, description="Seconds between two probe writes that tell `/readyz` whether JetStream stores writes."
    )
    # --- batch submit (POST /ads/batch) -------------------------------------------------------------
    batch_max: int = Field(
        500, ge=1, le=10_000, description="Most ads in one `POST /ads/batch`; more → 422 `batch_too_large`."
    )
    batch_max_body_bytes: int = Field(
        2 * 1024 * 1024, ge=1024, description="Largest `POST /ads/batch` body (other routes: `max_body_bytes`)."
    )


class NatsSettings(_Section):
    """``nats:`` – how every role reaches NATS: URL(s) (unset: ``gamead up`` starts an embedded server),
    credentials (user/password, token or TLS client certificate; secrets masked in ``gamead config show``),
    and timeouts in seconds for connecting and for each JetStream API call."""

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
    """``queue:`` – the work stream ``GAMEAD_ADS``: priority aging (seconds per level), JetStream's ack wait
    and duplicate window (seconds), its limits (messages, bytes; -1 unlimited), replicas, and how a worker
    polls (milliseconds it reuses queue heads, seconds between polls of an empty queue)."""

    aging_step: float = Field(10.0, gt=0, description="Seconds of waiting that lift an ad one priority level.")
    ack_wait: float = Field(30.0, gt=0, description="Seconds before an unacknowledged ad is redelivered.")
    duplicate_window: float = Field(120.0, gt=0, description="Window in which a repeated message id is dropped.")
    max_msgs: int = Field(1_000_000, description="Most ads waiting in the work stream (-1 = unlimited).")
    max_bytes: int = Field(1024**3, description="Most bytes in the work stream (-1 = unlimited).")
    replicas: int = Field(1, ge=1, le=5, description="Stream replicas (3 in a production cluster).")
    head_cache_ms: int = Field(200, ge=0, description="How long a worker reuses its view of queue heads.")
    idle_poll: float = Field(0.5, gt=0, description="Longest a worker waits between polls of an empty queue.")
    idle_wait: float = Field(
        5.0, gt=0, le=300, description="Seconds an idle worker's long-poll pull request waits at the server for "
        "an ad (one per level, answered the moment an ad arrives); then it looks at the queue again."
    )


class FaultSettings(_Section):
    """Fault injection for drills. Off unless ``rate`` > 0; logged loudly when on."""

    rate: float = Field(0.0, ge=0, le=1, description="Share of matching ads that fail (0 = off).")
    match: str | None = Field(None, description="Regex on the title; only matching ads can fail.")
    mode: Literal["retryable", "permanent", "crash", "hang"] = Field(
        "retryable", description="retryable error, permanent error, crash (hard exit) or hang (past task_timeout)."
    )
    attempts: int = Field(
        0, ge=0, description="Only the first N attempts of a matching ad can fail (0 = every attempt)."
    )


class WorkerSettings(_Section):
    """``worker:`` – one worker process: concurrent analyses, the drain on SIGTERM (seconds; below the pod's
    terminationGracePeriodSeconds), the analysis budget (attempts before the DLQ), the time limit of one
    attempt and the retry backoff ``min(cap, base·2^(n−1))`` with full jitter (seconds), fault injection."""

    concurrency: int = Field(4, ge=1, le=1024, description="Ads one worker process analyses at once.")
    drain_timeout: float = Field(25.0, ge=0, description="Seconds to finish in-flight ads on SIGTERM.")
    max_attempts: int = Field(
        5, ge=1, le=100,
        description="Analysis attempts (not deliveries) an ad may use before it goes to the DLQ.",
    )
    task_timeout: float = Field(60.0, gt=0, description="Seconds one analysis may take; longer is a failed attempt.")
    backoff_base: float = Field(1.0, gt=0, description="First retry delay ceiling in seconds (full jitter).")
    backoff_cap: float = Field(60.0, gt=0, description="Largest retry delay in seconds.")
    faults: FaultSettings = FaultSettings()
    metrics_port: int = Field(
        0, ge=0, le=65535,
        description="Port of this worker's Prometheus /metrics (0 = not served; `gamead up` gives each worker one).",
    )
    metrics_host: str = Field("127.0.0.1", description="Address the worker's /metrics listens on (0.0.0.0 in a pod).")


class MetricsSettings(_Section):
    """Prometheus metrics (gamead_core.telemetry): the API's ``GET /metrics``, each worker's
    ``worker.metrics_port``. Traces are configured by the standard ``OTEL_*`` variables, not here."""

    enabled: bool = Field(True, description="Record Prometheus metrics and serve them (cost: benchmarks/README.md).")


class DlqSettings(_Section):
    """``dlq:`` – the dead-letter stream: how long and how many entries it keeps (seconds, messages; -1
    unlimited) and the default pace of a replay (entries per second)."""

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
    max_bytes: int = Field(256 * 1024**2, ge=-1, description="Most bytes the jobs bucket holds (-1 = unlimited). "
                           "JetStream reserves it from the server's file store (max_file_store).")
    lease: float = Field(15.0, gt=0, description="A job whose runner is silent this long is resumed elsewhere.")
    follow_timeout: float = Field(
        60.0, ge=0, description="Seconds a replay job follows its replayed ads after the last replay."
    )
    max_resumes: int = Field(3, ge=0, description="Times a job is resumed after its runner died; then interrupted.")

    @field_validator("max_bytes")
    @classmethod
    def _unlimited_or_a_mebibyte(cls, value: int) -> int:
        if value != -1 and value < 1024**2:
            raise ValueError("must be -1 (unlimited) or at least 1 MiB (1048576)")
        return value


class DoctorSettings(_Section):
    """``gamead doctor`` / ``GET /v1/doctor``: the check of every invariant (``gamead_core.doctor``)."""

    scan_time: float = Field(
        60.0, gt=0, description="Most seconds one doctor run spends reading; past it the answer is partial."
    )
    scan_limit: int = Field(
        5_000_000, ge=100, description="Most messages one doctor run reads per stream; past it the answer is partial."
    )
    settle: float = Field(
        1.5, ge=0, le=60, description="Seconds before a finding is checked again (ads move while the doctor reads)."
    )
    sample: int = Field(20, ge=1, le=1000, description="Ad ids shown per kind of finding.")
    concurrency: int = Field(64, ge=1, le=1024, description="Record reads in flight.")
    overdue_after: float = Field(
        60.0, ge=0, description="Seconds an ad whose analysis budget is spent may wait, once due, for a worker to "
        "dead-letter it before the doctor reports it."
    )


class AuditSettings(_Section):
    """The audit trail of operator actions: stream ``GAMEAD_AUDIT`` (limits retention, oldest dropped first)."""

    max_age: float = Field(90 * 86400, gt=0, description="Seconds an audit record is kept (default 90 days).")
    max_msgs: int = Field(
        250_000, ge=-1, description="Most records kept; then the oldest go first (-1 = no limit). A record is "
        "~0.5 KB, so the default bounds the stream to ~125 MB."
    )
    max_bytes: int = Field(
        -1, ge=-1, description="Most bytes kept; then the oldest records go first (-1 = bounded by max_msgs only). "
        "A limit is reserved from the server's file store (max_file_store) when the stream is created."
    )
    scan_limit: int = Field(
        10_000, ge=100, description="Most records one `GET /v1/audit` reads; the answer says when it stopped."
    )
    refusals_per_minute: int = Field(
        30, ge=1, description="Refused actions recorded per caller per API node a minute; beyond that they are "
        "counted into the next record written (`repeats`)."
    )


class RegistrySettings(_Section):
    """``registry:`` – the KV bucket where every node says it is alive: heartbeat period and time to live
    (seconds). A node silent for ``ttl`` is gone from ``gamead workers`` and the autoscaler's count."""

    heartbeat_interval: float = Field(2.0, gt=0, description="Seconds between two heartbeats of a node.")
    ttl: float = Field(10.0, gt=0, description="A node silent this long disappears from the registry.")


class RedisSettings(_Section):
    """``redis:`` – optional Redis/Valkey for shared rate limits and the record cache. Unset: in-process
    fallbacks. Timeouts in seconds; the circuit breaker opens after ``breaker_failures`` consecutive failures
    and tries again after ``breaker_reset`` seconds (a Redis outage never fails a request)."""

    url: str | None = Field(None, description="redis:// URL of Redis 6+ or Valkey; unset = in-process fallbacks.")
    socket_timeout: float = Field(0.25, gt=0, description="Seconds per Redis command before it counts as failed.")
    connect_timeout: float = Field(0.5, gt=0)
    max_connections: int = Field(64, ge=1)
    breaker_failures: int = Field(3, ge=1, description="Consecutive failures that open the circuit breaker.")
    breaker_reset: float = Field(5.0, gt=0, description="Seconds the breaker stays open before a half-open probe.")


class CacheSettings(_Section):
    """``cache:`` – the cache of final ad records behind ``GET /ads/{id}`` (seconds an entry lives)."""

    ttl: float = Field(300.0, gt=0, description="Seconds a terminal ad record stays cached in Redis.")


class RateSettings(_Section):
    """One token bucket: ``rate`` requests per second refilled, ``burst`` requests at once."""

    rate: float = Field(gt=0, description="Requests per second refilled into the bucket.")
    burst: int = Field(ge=1, description="Bucket size: requests allowed at once.")


class RateLimitSettings(_Section):
    """``ratelimit:`` – token buckets per API key (per client IP when anonymous), per role and for the
    ``/v1/*`` operator routes; a refused request gets 429 ``rate_limited`` with ``Retry-After``."""

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


Role = Literal["submitter", "viewer", "operator"]
#: every role, least privileged first (gamead_core.api.auth holds what each may do)
ROLES: tuple[Role, ...] = ("submitter", "viewer", "operator")


class TokenSettings(_Section):
    """One API token under ``auth.tokens``: who it belongs to, the secret, and its role."""

    name: str = Field(
        min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@-]*$",
        description="Who the token belongs to: named in logs, rate-limit buckets and idempotency scopes.",
    )
    token: SecretStr
    role: Role

    @field_validator("name")
    @classmethod
    def _not_anonymous(cls, value: str) -> str:
        if value.lower() == "anonymous":
            raise ValueError("'anonymous' is reserved for callers without a token")
        return value


class AuthSettings(_Section):
    """``auth:`` – bearer tokens (RFC 6750) and their roles; required unless the API binds to loopback."""

    enabled: bool | None = Field(
        None, description="Require tokens. Unset = required unless the API binds to a loopback address."
    )
    tokens: list[TokenSettings] = Field(default_factory=list, description="API tokens: {name, token, role}.")


class RecordSettings(_Section):
    """Retention of the ad-record KV bucket. Completed and failed records expire first (a per-key TTL,
    nats-server ≥ 2.11); everything else is bounded by the bucket's age and size limits."""

    max_age: float = Field(
        30 * 86400, gt=0, description="Seconds any record is kept after its last write (default 30 days)."
    )
    completed_max_age: float = Field(
        7 * 86400, ge=1, description="Seconds a completed or failed record is kept (default 7 days)."
    )
    max_bytes: int = Field(
        4 * 1024**3, ge=-1, description="Most bytes the bucket holds; past it the oldest records go first "
        "(-1 = unlimited). JetStream reserves it from the server's file store (max_file_store)."
    )

    @field_validator("max_bytes")
    @classmethod
    def _unlimited_or_a_mebibyte(cls, value: int) -> int:
        if value != -1 and value < 1024**2:
            raise ValueError("must be -1 (unlimited) or at least 1 MiB (1048576)")
        return value

    @model_validator(mode="after")
    def _completed_within_max_age(self) -> RecordSettings:
        if self.completed_max_age > self.max_age:
            raise ValueError("completed_max_age cannot exceed max_age (JetStream caps a record's TTL at the "
                             "bucket's max age)")
        return self


class AnalysisSettings(_Section):
    """``analysis:`` – the analyser; ``simulated_latency_ms`` adds a delay (milliseconds) per analysis."""

    simulated_latency_ms: int = Field(0, ge=0, le=600_000, description="Extra I/O-like delay per analysis.")


class EmbeddedSettings(_Section):
    """``embedded:`` – the nats-server ``gamead up`` starts: data directory, port (0: a free one), fsync."""

    data_dir: Path = Field(Path(".gamead"), description="Where `gamead up` keeps NATS data and logs.")
    nats_port: int = Field(0, ge=0, le=65535, description="Port of the embedded nats-server (0 = free port).")
    sync_always: bool = Field(False, description="fsync before every ack (survives power loss; ~10x slower).")


class LogSettings(_Section):
    """``log:`` – level and format (JSON lines with ids as fields, or text)."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["json", "text"] = Field("json", description="json = one JSON object per line.")


class ClientSettings(_Section):
    """``client:`` – how the CLI talks to the API: URL, bearer token, the timeout of one answer and the time
    it may spend sending a request again (seconds; see ``gamead_cli.retry``)."""

    api_url: str = Field("http://127.0.0.1:8080", description="API the CLI talks to (env GAMEAD_API_URL).")
    token: SecretStr | None = Field(None, description="API token the CLI sends (env GAMEAD_TOKEN).")
    timeout: float = Field(10.0, gt=0)
    retry_for: float = Field(
        10.0, ge=0, le=600,
        description="Seconds the CLI may spend sending one request again after a 429, a 503 or a lost "
                    "connection, where that is safe (gamead_cli.retry); 0 never retries.")

    @field_validator("token")
    @classmethod
    def _token_fits_a_header(cls, value: SecretStr | None) -> SecretStr | None:
        """An HTTP header carries printable ASCII only (RFC 9110 §5.5; RFC 6750's b64token is a subset)."""
        if value is not None and not all(33 <= ord(c) <= 126 for c in value.get_secret_value()):
            raise ValueError(
                "must be printable ASCII without spaces: it is sent as an HTTP Bearer token (GAMEAD_TOKEN)")
        return value


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
    """The mapping in ``path``: at most :data:`MAX_CONFIG_BYTES` of UTF-8 YAML. Raises :class:`ConfigError`."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from exc
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"config file {path} is larger than {MAX_CONFIG_BYTES // 1024} KiB: is it the right file?")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {path} is not UTF-8 text (byte {exc.start}): is it the right file?") from exc
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {' '.join(str(exc).split())}") from exc
    except RecursionError as exc:
        raise ConfigError(f"config file {path} is nested too deeply") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top level")
    unknown = sorted(str(k) for k in data if k not in GameadSettings.model_fields)
    if unknown:
        import difflib

        hints = []
        for key in unknown:
            close = difflib.get_close_matches(key, list(GameadSettings.model_fields), n=1)
            hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise ConfigError(
            f"invalid configuration (from {path}): unknown top-level key {', '.join(hints)}; "
            f"known sections: {', '.join(GameadSettings.model_fields)}"
        )
    return data


def _bad_env_json(exc: SettingsError) -> ConfigError:
    """A ``GAMEAD_*`` variable that should hold JSON (a list or a section) and does not."""
    field = str(exc).split('"')[1] if str(exc).count('"') >= 2 else ""
    prefix = f"GAMEAD_{field.upper()}"
    candidates = sorted(k for k in os.environ if field and (k == prefix or k.startswith(prefix + "__")))

    def parses(name: str) -> bool:
        try:
            json.loads(os.environ[name])
        except ValueError:
            return False
        return True

    named = [k for k in candidates if not parses(k)] or candidates
    what = ", ".join(named) if named else f"a GAMEAD_* variable of section {field!r}"
    return ConfigError(
        f"invalid configuration: {what} is not valid JSON (a list or section in an env var is written as "
        f"JSON, e.g. GAMEAD_AUTH__TOKENS='[{{\"name\": \"ci\", \"token\": \"…\", \"role\": \"operator\"}}]')"
    )


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
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" if err["loc"] else err["msg"]
            for err in exc.errors()
        )
        source = f" (from {path})" if path else ""
        raise ConfigError(f"invalid configuration{source}: {problems}") from exc
    except SettingsError as exc:
        raise _bad_env_json(exc) from exc
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
    """The effective configuration as plain data with every secret replaced by ``'********'`` and the
    password or token in any URL's user-info by ``***`` (``nats://user:***@host``)."""

    def mask(value: Any) -> Any:
        if isinstance(value, SecretStr):
            return "********"
        if isinstance(value, str) and "://" in value:
            return redact_url(value)
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
