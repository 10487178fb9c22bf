"""Sections for what gamead keeps and the operator's tools: ``dlq:``, ``jobs:``, ``doctor:``, ``audit:``,
``registry:`` and ``records:`` (retention of the ad records)."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field, model_validator

from gamead_core.dlq_pattern import MAX_REPLAY_RATE
from gamead_core.config.section import (
    DAY, HOUR, MAX_COUNT, MINUTES_10, TIB, YEARS_10, PositiveSeconds, Seconds, Section,
)


def _unlimited_or_a_mebibyte(value: int) -> int:
    if value != -1 and value < 1024**2:
        raise ValueError("must be -1 (unlimited) or at least 1 MiB (1048576)")
    return value


#: A KV bucket's byte limit: -1 (unlimited) or at least 1 MiB (JetStream reserves it from max_file_store).
BucketBytes = Annotated[int, AfterValidator(_unlimited_or_a_mebibyte)]


class DlqSettings(Section):
    """``dlq:`` – the dead-letter stream: how long and how many entries it keeps (seconds, messages; -1
    unlimited) and the default pace of a replay (entries per second)."""

    max_age: PositiveSeconds = Field(
        14 * 86400, le=YEARS_10, description="Seconds a dead-lettered ad is kept (default 14 days). At most 10 "
        "years (3650 days).")
    max_msgs: int = Field(
        1_000_000, ge=-1, le=MAX_COUNT, description="Most entries kept in the DLQ (-1 = unlimited). At it, ads that "
        "fail for good wait queued (error DlqFull) until room is freed. At most 1,000,000,000.")
    replay_rate: float = Field(100.0, gt=0, le=MAX_REPLAY_RATE, description="Default replays per second. At most 100,000.")
    scan_limit: int = Field(
        100_000, ge=10, le=10_000_000, description="Most entries one list or dry-run request reads; the answer says "
        "if it stopped. At most 10,000,000.")
    scan_time: PositiveSeconds = Field(
        2.0, le=MINUTES_10, description="Most seconds one list or dry-run request spends reading. At most 10 "
        "minutes (600 s).")
    scans: int = Field(
        4, ge=1, le=64, description="DLQ reads (`GET /v1/dlq` pages, dry runs, a purge's count) one API node runs at "
        "once; as many again wait, more get 503 `list_busy` (each reads the DLQ with a consumer of its own on "
        "nats-server: this bounds their memory there). At most 64.")
    watch_scans: int = Field(
        2, ge=1, le=64, description="DLQ reads for watchers (`gamead top`'s page: a request with `Cache-Control: "
        "max-age`, or a viewer's token) one API node runs at once, apart from `dlq.scans`, so watching never takes "
        "an operator's capacity; as many again wait, more get 503 `list_busy`. Identical concurrent reads share one. "
        "At most 64.")
    watch_max_age: Seconds = Field(
        1.0, ge=0, le=10, description="Oldest answer (seconds) a watcher's read of the DLQ page or the audit trail "
        "is given from this node's cache of recent answers (0: none; the answer says its `ageSeconds`). At most 10 s.")


class JobSettings(Section):
    """Operator jobs (DLQ replay, purge, import): server-side, resumable, kept in KV bucket ``gamead_jobs``."""

    retention: PositiveSeconds = Field(
        7 * 86400, le=YEARS_10, description="Seconds a job's document is kept after its last change. At most 10 "
        "years (3650 days).")
    max_bytes: BucketBytes = Field(
        256 * 1024**2, ge=-1, le=TIB, description="Most bytes the jobs bucket holds (-1 = unlimited). JetStream "
        "reserves it from the server's file store (max_file_store). At most 1 TiB.")
    lease: Seconds = Field(
        15.0, ge=1, le=HOUR, description="A job whose runner is silent this long is resumed elsewhere; at least 1 s "
        "(renewed every max(0.2 s, lease / 3): a shorter lease lapses between renewals). At most 1 hour (3600 s).")
    follow_timeout: Seconds = Field(
        60.0, ge=0, le=DAY, description="Seconds a replay job follows its replayed ads after the last replay. At most "
        "1 day (86400 s).")
    max_resumes: int = Field(
        3, ge=0, le=100, description="Times a job is resumed after its runner died; then interrupted. At most 100.")
    max_running: int = Field(
        4, ge=1, le=256, description="Operator jobs (replay, purge, import, a doctor repair) one API node runs at "
        "once, resumed ones included; past it a new one is refused, 503 `jobs_busy` with Retry-After (each job scans "
        "the DLQ with a consumer of its own: this bounds their number on nats-server). At most 256.")

    @model_validator(mode="after")
    def _document_outlives_its_lease(self) -> JobSettings:
        # the bucket drops a key not written for `retention` (its max_age); a running job rewrites its document
        # only when it renews its lease: a retention below the lease loses a live job's document
        if self.retention < self.lease:
            raise ValueError(f"jobs.retention ({self.retention:g}s) must be at least jobs.lease ({self.lease:g}s): "
                             "a running job's document would expire between two renewals")
        return self


class DoctorSettings(Section):
    """``gamead doctor`` / ``GET /v1/doctor``: the check of every invariant (``gamead_core.doctor``)."""

    scan_time: PositiveSeconds = Field(
        60.0, le=HOUR, description="Most seconds one doctor run spends reading; past it the answer is partial. "
        "At most 1 hour (3600 s).")
    scan_limit: int = Field(
        5_000_000, ge=100, le=100_000_000, description="Most messages one doctor run reads per stream; past it the "
        "answer is partial. At most 100,000,000.")
    settle: Seconds = Field(
        1.5, ge=0, le=60, description="Seconds before a finding is checked again (ads move while the doctor reads). "
        "At most 60 s.")
    sample: int = Field(20, ge=1, le=1000, description="Ad ids shown per kind of finding. At most 1000.")
    concurrency: int = Field(64, ge=1, le=1024, description="Record reads in flight. At most 1024.")
    overdue_after: Seconds = Field(
        60.0, ge=0, le=DAY, description="Seconds an ad whose analysis budget is spent may wait, once due, for a "
        "worker to dead-letter it before the doctor reports it. At most 1 day (86400 s).")


class AuditSettings(Section):
    """The audit trail of operator actions: stream ``GAMEAD_AUDIT`` (limits retention, oldest dropped first)."""

    max_age: PositiveSeconds = Field(
        90 * 86400, le=YEARS_10, description="Seconds an audit record is kept (default 90 days). At most 10 "
        "years (3650 days).")
    max_msgs: int = Field(
        250_000, ge=-1, le=MAX_COUNT, description="Most records kept; then the oldest go first (-1 = no limit). A "
        "record is ~0.5 KB, so the default bounds the stream to ~125 MB. At most 1,000,000,000.")
    max_bytes: int = Field(
        -1, ge=-1, le=TIB, description="Most bytes kept; then the oldest records go first (-1 = bounded by max_msgs "
        "only). A limit is reserved from the server's file store (max_file_store) when the stream is created. At most "
        "1 TiB.")
    scan_limit: int = Field(
        10_000, ge=100, le=1_000_000, description="Most records one `GET /v1/audit` reads; the answer says when it "
        "stopped. At most 1,000,000.")
    scans: int = Field(
        2, ge=1, le=64, description="Audit reads (`GET /v1/audit` pages) one API node runs at once; as many again "
        "wait, more get 503 `list_busy` (each may read `scan_limit` records: 20 at once took an API to 729 MB and "
        "its submits' p95 from 51 ms to 1 s). At most 64.")
    watch_scans: int = Field(
        2, ge=1, le=64, description="Audit reads for watchers (`gamead top`'s panel: `Cache-Control: max-age`, or a "
        "viewer's token) one API node runs at once, apart from `scans`, so watching never takes an operator's "
        "capacity; as many again wait, more get 503 `list_busy`. At most 64.")
    refusals_per_minute: int = Field(
        30, ge=1, le=10_000, description="Refused actions recorded per caller per API node a minute; beyond that they "
        "are counted into the next record written (`repeats`). At most 10,000.")
    node_refusals: int = Field(
        60, ge=1, le=100_000, description="Refused actions recorded per API node per node_refusals_window, all "
        "callers together (a caller rotating its address is a new caller each time); beyond that they are counted "
        "into one `refusals_suppressed` record per window. At most 100,000.")
    node_refusals_window: Seconds = Field(
        60.0, ge=1, le=HOUR, description="Seconds of one node_refusals window. At least 1, at most 1 hour (3600 s).")


class RegistrySettings(Section):
    """``registry:`` – the KV bucket where every node says it is alive: heartbeat period and time to live
    (seconds). A node silent for ``ttl`` is gone from ``gamead workers`` and the autoscaler's count."""

    heartbeat_interval: Seconds = Field(
        2.0, ge=0.1, le=HOUR, description="Seconds between two heartbeats of a node; at least 0.1 s (each is a KV "
        "write, and the reaper runs every half of it). At most 1 hour (3600 s).")
    ttl: PositiveSeconds = Field(10.0, le=DAY, description="A node silent this long disappears from the registry "
                       "(at least 2 × heartbeat_interval). At most 1 day (86400 s).")

    @model_validator(mode="after")
    def _ttl_outlives_two_beats(self) -> RegistrySettings:
        # the reaper's lease lives min(3 × heartbeat_interval, ttl / 2) and is renewed every heartbeat_interval
        # (gamead_core.worker.reaper), and `gamead up` kills a worker silent for ttl: below two beats the lease
        # lapses between renewals and live nodes are taken for dead (ttl 1 s: a worker restarted every ~30 s)
        if self.ttl < 2 * self.heartbeat_interval:
            raise ValueError(f"registry.ttl ({self.ttl:g}s) must be at least twice registry.heartbeat_interval "
                             f"({self.heartbeat_interval:g}s), so {2 * self.heartbeat_interval:g}s: a node would "
                             "vanish between two of its heartbeats")
        return self



class RecordSettings(Section):
    """Retention of the ad-record KV bucket. Completed and failed records expire first (a per-key TTL,
    nats-server ≥ 2.11); everything else is bounded by the bucket's age and size limits."""

    max_age: PositiveSeconds = Field(
        30 * 86400, le=YEARS_10, description="Seconds any record is kept after its last write (default 30 "
        "days). At most 10 years (3650 days).")
    completed_max_age: Seconds = Field(
        7 * 86400, ge=1, le=YEARS_10, description="Seconds a completed or failed record is kept (default 7 days). At "
        "most 10 years (3650 days).")
    max_bytes: BucketBytes = Field(
        4 * 1024**3, ge=-1, le=TIB, description="Most bytes the bucket holds; past it the oldest records go first "
        "(-1 = unlimited). JetStream reserves it from the server's file store (max_file_store). At most 1 TiB."
    )
    refuse_at: float = Field(
        0.9, ge=0.5, le=0.99, description="Share of max_bytes from which the API refuses new ads (503 records_full) "
        "while the records the full bucket would drop next include a live (queued or retrying) ad's: the rest is "
        "headroom for the workers' updates. At least 0.5, at most 0.99.")

    @model_validator(mode="after")
    def _completed_within_max_age(self) -> RecordSettings:
        if self.completed_max_age > self.max_age:
            raise ValueError("completed_max_age cannot exceed max_age (JetStream caps a record's TTL at the "
                             "bucket's max age)")
        return self

