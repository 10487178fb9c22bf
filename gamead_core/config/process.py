"""Sections for the processes that serve and work: ``api:``, ``nats:``, ``queue:``, ``worker:`` (with its
``faults:``, :mod:`gamead_core.config.faults`), ``analysis:`` and ``metrics:``."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator

from gamead_core.config.addresses import host_problem, nats_url_problem
from gamead_core.config.faults import FaultSettings
from gamead_core.config.placeholders import refuse_placeholder
from gamead_core.config.section import (
    DAY, GIB, HOUR, MAX_COUNT, MIB, MINUTES_10, TIB, WEEK, PositiveSeconds, Seconds, Section,
)


class ApiSettings(Section):
    """``api:`` – the HTTP API of ``gamead serve``: where it listens, what it accepts (body size, HTTP framing
    limits: lengths in bytes, times in seconds), and how often it checks NATS, the topology and storage.
    Invalid values raise :class:`~gamead_core.errors.ConfigError` from :func:`load_settings`."""

    host: str = Field("127.0.0.1", description="Address `gamead serve` binds to.")
    port: int = Field(8080, ge=0, le=65535, description="Port `gamead serve` listens on. At most 65535.")
    max_body_bytes: int = Field(
        64 * 1024, ge=1024, le=64 * MIB, description="Largest request body accepted. At most 64 MiB.")
    publish_timeout: PositiveSeconds = Field(
        2.0, le=MINUTES_10, description="Seconds to wait for JetStream to ack a submit. At most 10 minutes (600 "
        "s).")
    write_linger_ms: float = Field(
        2.0, ge=0, le=100, description="Milliseconds a submit's write to NATS (its record, then its message) waits "
        "for others to join it in one socket write, only while this node writes at least every this long (a lone "
        "submit is sent at once): fewer, fuller writes and acks at a steady flow; a submit waits at most twice this "
        "longer. 0 = never wait. At most 100 ms.")
    list_scan_limit: int = Field(
        10_000, ge=100, le=1_000_000, description="Most ad records `GET /ads` scans to build one filtered page. At "
        "most 1,000,000.")
    list_scans: int = Field(
        2, ge=1, le=64, description="`GET /ads` scans one API node runs at once; as many again wait, more get 503 "
        "`list_busy` (each scan reads up to `list_scan_limit` records: this bounds their memory and CPU). At most 64.")
    # --- HTTP framing limits (enforced by gamead_core.api.http_limits before any handler runs) ---------
    max_request_line_bytes: int = Field(
        8 * 1024, ge=256, le=MIB, description="Longest request target (path and query); longer → 414. At most 1 MiB."
    )
    max_header_bytes: int = Field(
        16 * 1024, ge=1024, le=MIB, description="Most bytes of request line and headers together; more → 431. At most "
        "1 MiB.")
    max_headers: int = Field(
        100, ge=8, le=10_000, description="Most header fields in one request; more → 431. At most 10,000.")
    read_timeout: PositiveSeconds = Field(
        15.0, le=HOUR, description="Seconds a client may take to send one whole request (line, headers, body), "
        "counted from the connection's opening or the request's first byte, without the time the server itself does "
        "not read (a pipelined request waiting for the one before it); slower → 408 and close. What is already in "
        "the socket when it passes (the API stood still) is read first. At most 1 hour (3600 s).")
    keep_alive_timeout: PositiveSeconds = Field(
        5.0, le=HOUR, description="Seconds an idle keep-alive connection is kept open between two requests; a "
        "request already in the socket when it runs out (the API stood still) is read and answered. At most 1 hour "
        "(3600 s).")
    write_timeout: PositiveSeconds = Field(
        30.0, le=HOUR, description="Seconds an answer may wait with no byte read by its client (acknowledged "
        "by its TCP stack); then it is aborted (a reset) and logged. 30 s: far above a reader that reads at all (any "
        "byte read starts it again), well below what a client that never reads may hold (its descriptor and up to a "
        "few MB of socket buffer: attack34a F1). At most 1 hour (3600 s).")
    max_unsent_bytes: int = Field(
        256 * MIB, ge=MIB, le=64 * GIB, description="Most bytes of answers the API holds for clients that have not "
        "read them yet, all connections together (an answer is written whole: a `GET /ads?limit=500` of 3 MB); past "
        "it the answers whose clients read nothing for longest are aborted. At most 64 GiB.")
    max_connections: int | None = Field(
        None, ge=1, le=10_000_000, description="Most connections open at once; past it a new connection closes the one "
        "waiting longest for a request (none in flight), or is answered 503 `too_many_connections`. Unset: the open-"
        "files limit less 64 and `redis.max_connections` (at least 16). At most 10,000,000.")
    nats_unhealthy_after: Seconds = Field(
        60.0, ge=1, le=DAY, description="`/healthz` fails once NATS has not answered for this many seconds (restart "
        "me); at least 1 s (a connection's ordinary reconnect must not fail the probe). At most 1 day (86400 s).")
    topology_check_interval: Seconds = Field(
        5.0, ge=0.1, le=HOUR, description="Seconds between two checks of the JetStream topology (missing objects "
        "recreated); at least 0.1 s (each check lists every stream and bucket: less is a busy loop of JetStream API "
        "calls). At most 1 hour (3600 s).")
    storage_probe_interval: Seconds = Field(
        5.0, ge=0.1, le=HOUR, description="Seconds between two probe writes that tell `/readyz` whether JetStream "
        "stores writes; at least 0.1 s (each probe is a KV write). At most 1 hour (3600 s).")
    # --- batch submit (POST /ads/batch) -------------------------------------------------------------
    batch_max: int = Field(
        500, ge=1, le=10_000, description="Most ads in one `POST /ads/batch`; more → 422 `batch_too_large`. At most "
        "10,000.")
    batch_max_body_bytes: int = Field(
        2 * 1024 * 1024, ge=1024, le=128 * MIB, description="Largest `POST /ads/batch` body (other routes: "
        "`max_body_bytes`). At most 128 MiB.")
    batch_atomic: Literal["auto", "always", "never"] = Field(
        "auto", description="Write `POST /ads/batch`'s records and messages as JetStream atomic batches, one ack "
        "per batch (NATS ADR-50, nats-server >= 2.12.1): `auto` when `queue.replicas` > 1 (faster there; on R1 "
        "streams nats-server stages each batch on disk and it is slower), `always`, or `never` (one ack per ad).")

    @field_validator("host")
    @classmethod
    def _an_address(cls, value: str) -> str:
        """An address to listen on (:func:`~gamead_core.config.addresses.host_problem`)."""
        if (problem := host_problem(value)) is not None:
            raise ValueError(problem)
        return value


class NatsSettings(Section):
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
    connect_timeout: PositiveSeconds = Field(
        2.0, le=MINUTES_10, description="Seconds to open a connection to a NATS server. At most 10 minutes "
        "(600 s).")
    request_timeout: PositiveSeconds = Field(
        2.0, le=MINUTES_10, description="Timeout of JetStream API calls. At most 10 minutes (600 s).")
    ping_interval: Seconds = Field(
        10.0, ge=1, le=HOUR, description="Seconds between the client's PINGs; a connection whose server misses "
        "max_outstanding_pings of them in a row is stale and reconnected (nats-py's default is 120 s); at least 1 s. "
        "At most 1 hour (3600 s).")
    max_outstanding_pings: int = Field(
        3, ge=1, le=100, description="Unanswered PINGs that make a connection stale. At most 100.")
    stale_after: Seconds = Field(
        3.0, ge=2, le=MINUTES_10, description="Seconds the server a connection is on may leave gamead's PING (one a "
        "second) unanswered before the connection is left for another server of nats.url (a stopped, frozen or "
        "cut-off server); /readyz's nats check fails from half of it. At least 2 s: two PING rounds "
        "(gamead_core.queue.liveness), so that half of it is one whole round. At most 10 minutes (600 s).")
    max_pending_bytes: int = Field(
        4 * 1024 * 1024, ge=64 * 1024, le=GIB, description="Most bytes a process lets wait to be sent to NATS "
        "(nats-py's pending buffer + the socket's write buffer); above it a write answers 503 queue_unavailable at "
        "once instead of buffering (NATS connected but not reading, e.g. stalled). At most 1 GiB.")
    give_up_after: Seconds = Field(
        0.0, ge=0, le=7 * 86400, description="Seconds `gamead serve` and `gamead worker` try to reach NATS at start "
        "before they exit with code 3 (cannot reach); 0 = keep trying for ever, with a WARNING line naming the URL, "
        "the error and the next attempt every few seconds. At most 7 days (604800 s).")
    refused_exit_after: Seconds = Field(
        30.0, ge=0, le=DAY, description="Seconds `gamead worker` and `gamead serve` go on retrying once NATS refuses "
        "their credentials after they had connected (Authorization Violation: its token changed, e.g. a stack "
        "restarted on the same port) before they exit with code 5; a reconnect in between starts it again. "
        "/healthz stays 200 (naming the refusal) until then, /readyz is 503 at once. 0 = never exit, keep retrying "
        "(a refusal can be brief: an auth callout down, a token rotated early; a connection NATS closed, as on a "
        "config reload with another token, cannot be retried and still exits 5 at once). At most 1 day.")

    @field_validator("url")
    @classmethod
    def _servers_nats_py_reads(cls, value: str | None) -> str | None:
        """A server list nats-py can connect to (:func:`~gamead_core.config.addresses.nats_url_problem`), without the
        spaces around it: spaces alone are unset, as the check reads them (``gamead up`` said ``using NATS at`` and
        nothing, ``gamead worker`` ``cannot connect to NATS at :``)."""
        if value is not None and (problem := nats_url_problem(value)) is not None:
            raise ValueError(problem)
        return value.strip() if value is not None else None

    @field_validator("token", "password")
    @classmethod
    def _not_the_template(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        """Not manifests/base/secret.example.env's placeholder (attack39b F2: gamead_core.config.placeholders)."""
        return refuse_placeholder(value, info)

    @model_validator(mode="after")
    def _key_goes_with_a_cert(self) -> NatsSettings:
        """A client key alone would be ignored without a word (ssl loads a key only with its certificate)."""
        if self.tls_key and not self.tls_cert:
            raise ValueError("nats.tls_key is set without nats.tls_cert: set both (mutual TLS) or neither")
        if self.token and (self.user or self.password):  # nats-py's CONNECT then sends user/pass, never the token
            raise ValueError("nats.token is set together with nats.user/nats.password: set one or the other (a "
                             "NATS client sends the user and password and leaves the token out)")
        return self


class QueueSettings(Section):
    """``queue:`` – the work stream ``GAMEAD_ADS``: priority aging (seconds per level), JetStream's ack wait
    and duplicate window (seconds), its limits (messages, bytes; -1 unlimited), replicas, and how a worker
    polls (milliseconds it reuses queue heads, seconds between polls of an empty queue)."""

    aging_step: PositiveSeconds = Field(
        10.0, le=WEEK, description="Seconds of waiting that lift an ad one priority level. At most 7 days "
        "(604800 s).")
    ack_wait: Seconds = Field(
        30.0, ge=1, le=DAY, description="Seconds before an unacknowledged ad is redelivered; at least 1 s (a worker "
        "renews every ad it holds at a fraction of it: less is a busy loop of acks). At most 1 day (86400 s).")
    duplicate_window: Seconds = Field(
        120.0, ge=1, le=DAY, description="Window in which a repeated message id is dropped; at least 1 s (JetStream "
        "keeps it in whole seconds of message ids). At most 1 day (86400 s).")
    max_msgs: int = Field(
        1_000_000, ge=-1, le=MAX_COUNT, description="Most ads waiting in the work stream (-1 = unlimited). At most "
        "1,000,000,000.")
    max_bytes: int = Field(
        1024**3, ge=-1, le=TIB, description="Most bytes in the work stream (-1 = unlimited). At most 1 TiB.")
    replicas: int = Field(1, ge=1, le=5, description="Stream replicas (3 in a production cluster). At most 5.")
    partitions: int = Field(
        1, ge=1, le=64, description="Work streams the ads are spread over (by ad id), so a cluster's stream leaders "
        "share the load; 1 = the single stream GAMEAD_ADS. Changed only on a drained queue (see the README). At most "
        "64.")
    repartition: bool = Field(
        False, description="One-shot operator act: this start may change the work streams to queue.partitions "
        "(every other node stopped, the queue drained; refused while the registry lists a live node on another "
        "setting; README: Partitions). Without it a start whose "
        "queue.partitions differs from the streams is refused (exit 5) and touches nothing."
    )
    lower_limits: bool = Field(
        False, description="Operator act: this start may lower the live work streams' max_msgs, max_bytes, "
        "duplicate_window, the level consumers' ack_wait and the shared stores' limits (dlq.max_msgs/max_age, "
        "audit.*, records.max_bytes/max_age, registry.ttl, jobs.max_bytes/retention) to this node's (every node runs "
        "the new values; never a count or size below what a stream or bucket holds). Without it a start only raises "
        "them, and keeps a lower value of its own out with a WARNING (README: Topology).")
    head_cache_ms: int = Field(
        200, ge=0, le=60_000, description="How long a worker reuses its view of queue heads (0 = read them at every "
        "look; the looks themselves are paced by idle_poll). At most 60000 ms.")
    idle_poll: Seconds = Field(
        0.5, ge=0.05, le=300, description="Longest a worker waits between polls of an empty queue; at least 0.05 s "
        "(each poll reads the queue heads: less is an idle worker busy-polling). At most 300 s.")
    idle_wait: Seconds = Field(
        5.0, ge=0.5, le=300, description="Seconds an idle worker's long-poll pull request waits at the server for an "
        "ad (one per level, answered the moment an ad arrives); then it looks at the queue again. At least 0.5 s: the "
        "long polls are re-sent every idle_wait (5 × partitions requests per idle_wait per idle worker). At most 300 "
        "s.")

    @model_validator(mode="after")
    def _poll_within_the_long_poll(self) -> QueueSettings:
        # the long polls wait idle_wait at the server, then the worker looks again within idle_poll
        # (gamead_core.queue.long_poll, worker.runtime): a poll period past the long poll leaves levels unwatched
        if self.idle_poll > self.idle_wait:
            raise ValueError(f"queue.idle_poll ({self.idle_poll:g}s) must not exceed queue.idle_wait "
                             f"({self.idle_wait:g}s): an idle worker would leave the queue unwatched between them")
        return self


class WorkerSettings(Section):
    """``worker:`` – one worker process: concurrent analyses, the drain on SIGTERM (seconds; below the pod's
    terminationGracePeriodSeconds), the analysis budget (attempts before the DLQ), the time limit of one
    attempt and the retry backoff ``min(cap, base·2^(n−1))`` with full jitter (seconds), fault injection."""

    concurrency: int = Field(4, ge=1, le=1024, description="Ads one worker process analyses at once. At most 1024.")
    drain_timeout: Seconds = Field(
        25.0, ge=0, le=DAY, description="Seconds to finish in-flight ads on SIGTERM. At most 1 day (86400 s).")
    max_attempts: int = Field(
        5, ge=1, le=100,
        description="Analysis attempts (not deliveries) an ad may use before it goes to the DLQ. At most 100.",
    )
    task_timeout: PositiveSeconds = Field(
        60.0, le=DAY, description="Seconds one analysis may take; longer is a failed attempt. At most 1 day "
        "(86400 s).")
    processing_mark_after: Seconds = Field(
        0.5, ge=0, le=HOUR, description="Seconds an analysis runs before its record is marked `processing` (one more "
        "KV write); shorter analyses go from queued to completed in one write (0 = mark every attempt before it "
        "starts). At most 1 hour (3600 s).")
    prefetch: int = Field(
        32, ge=0, le=1024,
        description="Ads a worker pulls beyond its free slots when a level has a backlog, held (kept alive, not "
        "started) in a local buffer ordered by priority with aging; an urgent arrival still starts first, a "
        "buffered ad waits at most this many analyses of its worker. 0 = pull only for free slots. At most 1024.",
    )
    prefetch_wait: Seconds = Field(
        0.05, ge=0, le=60, description="Seconds of analyses a worker prefetches: only as many ads as its slots finish "
        "in this time at their recent pace (none before it has timed an ad; at most `worker.prefetch`), so uniformly "
        "slow analyses are not hoarded while other workers idle; a worker whose slots all stay busy for 4 × this (at "
        "least 1 s) hands its buffer back. 0 = no limit: always `worker.prefetch`, kept, hoarding included. At most "
        "60 s.")
    linger_ms: float = Field(
        5.0, ge=0, le=100, description="Milliseconds an idle worker woken by an arriving ad waits for more to join "
        "it before pulling, only while ads reach it at least every this long (a trickle starts at once): fewer, "
        "fuller rounds of writes and acks at a steady flow. 0 = never wait. At most 100 ms.")
    backoff_base: PositiveSeconds = Field(
        1.0, le=DAY, description="First retry delay ceiling in seconds (full jitter). At most 1 day (86400 s).")
    backoff_cap: PositiveSeconds = Field(
        60.0, le=DAY, description="Largest retry delay in seconds. At most 1 day (86400 s).")
    faults: FaultSettings = FaultSettings()
    metrics_port: int = Field(
        0, ge=0, le=65535, description="Port of this worker's Prometheus /metrics (0 = not served; `gamead up` gives "
        "each worker one). At most 65535.")
    metrics_host: str = Field("127.0.0.1", description="Address the worker's /metrics listens on (0.0.0.0 in a pod).")

    @field_validator("metrics_host")
    @classmethod
    def _an_address(cls, value: str) -> str:
        """An address to listen on (:func:`~gamead_core.config.addresses.host_problem`)."""
        if (problem := host_problem(value)) is not None:
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _base_within_the_cap(self) -> WorkerSettings:
        # the delay is min(cap, base·2^(n−1)): a base above the cap would be silently cut to it at every retry
        if self.backoff_base > self.backoff_cap:
            raise ValueError(f"worker.backoff_base ({self.backoff_base:g}s) must not exceed worker.backoff_cap "
                             f"({self.backoff_cap:g}s)")
        return self


class MetricsSettings(Section):
    """Prometheus metrics (gamead_core.telemetry): the API's ``GET /metrics``, each worker's
    ``worker.metrics_port``. Traces are configured by the standard ``OTEL_*`` variables, not here."""

    enabled: bool = Field(True, description="Record Prometheus metrics and serve them (cost: benchmarks/README.md).")



class AnalysisSettings(Section):
    """``analysis:`` – the analyser; ``simulated_latency_ms`` adds a delay (milliseconds) per analysis."""

    simulated_latency_ms: int = Field(
        0, ge=0, le=600_000, description="Extra I/O-like delay per analysis. At most 600000 ms (10 minutes).")

