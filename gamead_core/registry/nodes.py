"""Node builders: the heartbeat of a worker (from what it says of itself) and of an API node.

Each heartbeat carries the node's clock as it measured it (``clockOffsetSeconds``, ``clockErrorSeconds``:
:mod:`gamead_core.clock_offset`) and its ``uptimeSeconds`` on its monotonic clock: ``startedAt`` stays the host
clock's (the incarnation stamp ``gamead up`` recognises its child by, on one host), so an uptime shown as
``now − startedAt`` would count the host's skew (attack33a F1: ``UP 5m14s`` for a worker started 12 s before)."""

from __future__ import annotations

import os
import re
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata

from gamead_core import clock
from gamead_core.clock_offset import measured
from gamead_core.ids import id_tail
from gamead_core.models import utcnow
from gamead_core.registry.health import node_state, percentiles
from gamead_core.registry.wire import CREATE_FENCE, HeldAd, NodeInfo
from gamead_core.telemetry.histogram import LatencyBuckets

#: Processing and queue-wait figures in a heartbeat cover the ads finished in this many seconds.
RECENT_WINDOW = 60.0
_KEY_ESCAPED = re.compile(r"[^-a-zA-Z0-9]")
_EARLIER_UNSAFE = re.compile(r"[^-_=a-zA-Z0-9]")  #: :func:`earlier_node_key`'s rule


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char == ".":
        return "_"
    code = ord(char)
    return f"={code:02x}" if code < 0x100 else f"=u{code:06x}"


def node_key(node_id: str) -> str:
    """The KV key of a node id (or of any text: a stop note's incarnation, :mod:`.stops`), one to one: ``.`` as
    ``_`` (the key of an id of ``[-.a-zA-Z0-9]``, e.g. a default id on a host named so, is what it always was:
    a rolling upgrade keeps it), every other character outside ``[-a-zA-Z0-9]`` as ``=`` and its code point in
    hex (``=5f`` for ``_``, ``=3a`` for ``:``, ``=40`` for ``@``; ``=u`` and six digits past U+00FF), the empty
    text as ``=``. Before, each was ``_``: ``w:1``, ``w@1``, ``w.1`` and ``w_1`` shared one key, each beat
    overwriting the other's (review41 F9). Pure."""
    return _KEY_ESCAPED.sub(_escape, node_id) if node_id else "="


def earlier_node_key(node_id: str) -> str:
    """The registry key a gamead before review41 F9 gave ``node_id``: every character outside ``[-_=a-zA-Z0-9]`` as
    ``_`` (many ids to one key). The same as :func:`node_key` for an id of ``[-.a-zA-Z0-9]``; for any other
    (``worker_1``, ``api-my_host-7``), the key an older node of a rolling deploy beats, deletes and looks up under,
    so :class:`~gamead_core.registry.kv.Registry` reads it too and marks a clean stop there (review42 F1). Pure."""
    return _EARLIER_UNSAFE.sub("_", node_id) or "_"


def _version() -> str:
    try:
        return metadata.version("gamead")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0.0.0"


VERSION = _version()


def _at(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, timezone.utc)


#: a process start (host-clock epoch s, its ``startedAt``) → the monotonic time of that start, worked out at its
#: first beat (seconds after the start: a host clock stepped between the two is off by that step, once)
_MONO_STARTS: dict[float, float] = {}


def uptime(started: float) -> float:
    """Seconds since ``started`` (host-clock epoch seconds of this process's start, its ``startedAt``) on the
    monotonic clock: what a heartbeat says as ``uptimeSeconds``, untouched by the host clock's skew or steps."""
    mono = _MONO_STARTS.get(started)
    if mono is None:
        mono = _MONO_STARTS[started] = time.monotonic() - max(0.0, time.time() - started)
    return round(max(0.0, time.monotonic() - mono), 3)


def server_started(node: NodeInfo) -> float:
    """When ``node``'s process started, epoch seconds on nats-server's clock: its host-clock ``startedAt`` corrected
    by its offset, or its beat's time less its ``uptimeSeconds`` when the two disagree by more than a beat (its
    host clock was stepped since it started) or the offset is unknown (an older node: ``startedAt`` as it is). Not
    always the latter: a worker's announcements (:mod:`gamead_core.worker.announce`) renew ``heartbeatAt`` and
    keep the last beat's ``uptimeSeconds``, which then reads up to a beat short (a start up to a beat late). Pure."""
    by_offset = node.started_at.timestamp() + (node.clock_offset_seconds or 0.0)
    if node.uptime_seconds is None:
        return by_offset
    by_uptime = node.heartbeat_at.timestamp() - node.uptime_seconds
    beat = (node.heartbeat_interval or 2.0) + 1.0
    return by_offset if node.clock_offset_seconds is not None and -beat <= by_offset - by_uptime <= 1.0 else by_uptime


@dataclass(frozen=True, slots=True)
class WorkerSelf:
    """What a worker says of itself for its heartbeat (``Worker.describe()``): the registry needs nothing
    else of the worker, and never imports it."""

    id: str
    concurrency: int
    started: float  #: epoch seconds
    in_flight: int  #: analyses running now (≤ concurrency; ``holding`` also has buffered and settling ads)
    processed: int
    failed: int
    last_error: str | None
    #: epoch seconds (nats-server's clock) an ad last finished, for the stuck check; None: none yet (its start)
    last_progress: float | None
    #: recent (finished_at epoch s, processing ms, queue-wait ms) samples, newest last
    recent: Sequence[tuple[float, float, float]]
    holding: list[HeldAd]
    task_timeout: float  #: seconds (its ``worker.task_timeout``)
    ack_wait: float  #: seconds: the live ``ack_wait`` it paces its in-progress acks by (``AckWaitKeepAlive``)
    metrics_url: str | None = None  #: where its Prometheus metrics are served (``worker.metrics_port``)
    #: its last minute's histogram bucket counts (``WorkerMetrics.buckets``), summed by /v1/stats
    latency_buckets: LatencyBuckets | None = None
    #: ms of process CPU per settled ad over its last ~30 s of work (``WorkerStats.cpu_per_ad_ms()``)
    cpu_per_ad_ms: float | None = None
    dead: int = 0  #: of ``failed``, the ads it dead-lettered
    heartbeat_interval: float | None = None  #: seconds between its beats (its ``registry.heartbeat_interval``)
    partitions: int | None = None  #: its ``queue.partitions`` (the work streams it pulls from)
    #: priority → epoch s the oldest ad it holds unstarted was submitted (gamead_core.worker.unstarted)
    unstarted_since: Mapping[int, float] = field(default_factory=dict)
    quiet: bool = False  #: told to take no new ad (gamead_core.worker.quiet)
    #: ``<stream>.<consumer>`` → stream sequences it handed back lately (gamead_core.worker.handed)
    handed_back: Mapping[str, list[int]] = field(default_factory=dict)


#: pid → the host name its entries say (:func:`this_host`)
_HOSTS: dict[int, str] = {}


def this_host() -> str:
    """The host name every registry entry of this process says: the one it had at its first entry. Read again per
    beat, a host renamed under a live process (DHCP, ``hostnamectl``) made its own earlier entry another process's
    (:func:`same_incarnation` compares host, pid and start): an API stopped and exited 5 as a copy of itself, a
    worker too, and the reapers took it for dead (review45)."""
    return _HOSTS.setdefault(os.getpid(), socket.gethostname())


#: The environment variable a worker's Kubernetes pod name is in (manifests/base/worker.yaml: the downward API)
POD_NAME_ENV = "POD_NAME"
#: A pod name as Kubernetes makes one (a DNS subdomain, RFC 1123): anything else is no pod's
POD_NAME_PATTERN = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")


def pod_name(value: object) -> str | None:
    """``value`` when it is a pod name Kubernetes could have made, else None. Pure."""
    return value if isinstance(value, str) and POD_NAME_PATTERN.fullmatch(value) else None


_PODS: dict[int, str | None] = {}  #: pid → its pod, read at its first entry (:func:`this_pod`)


def this_pod(environ: Mapping[str, str] | None = None) -> str | None:
    """The Kubernetes pod this process runs in (env :data:`POD_NAME_ENV`), None when unset or not a pod name. Of
    ``os.environ`` (no ``environ``): read once per process, as :func:`this_host` (not env + regex every beat)."""
    if environ is not None:
        return pod_name(environ.get(POD_NAME_ENV))
    pid = os.getpid()
    if pid not in _PODS:
        _PODS[pid] = pod_name(os.environ.get(POD_NAME_ENV))
    return _PODS[pid]


def worker_node_info(me: WorkerSelf, *, draining: bool = False, now: float | None = None) -> NodeInfo:
    """The heartbeat of a worker, from what it says of itself (``now``: epoch seconds, default the clock).
    Processing and queue-wait percentiles cover the samples of the last ``RECENT_WINDOW`` seconds."""
    now = clock.now() if now is None else now
    cutoff = now - RECENT_WINDOW
    recent = [s for s in list(me.recent) if s[0] >= cutoff]
    info = NodeInfo(
        id=me.id,
        role="worker",
        host=this_host(),
        pid=os.getpid(),
        version=VERSION,
        fence=CREATE_FENCE,
        started_at=_at(me.started),
        heartbeat_at=_at(now),
        concurrency=me.concurrency,
        in_flight=me.in_flight,
        processed=me.processed,
        failed=me.failed,
        dead=me.dead,
        last_error=me.last_error,
        processing_ms=percentiles(s[1] for s in recent),
        queue_wait_ms=percentiles(s[2] for s in recent),
        last_progress_at=_at(now - uptime(me.started) if me.last_progress is None else me.last_progress),
        task_timeout=me.task_timeout,
        heartbeat_interval=me.heartbeat_interval,
        state="draining" if draining else "ok",
        holding=list(me.holding),
        handed_back=dict(me.handed_back),
        ack_wait=me.ack_wait,
        metrics_url=me.metrics_url,
        latency_buckets=me.latency_buckets,
        cpu_per_ad_ms=me.cpu_per_ad_ms,
        partitions=me.partitions,
        unstarted_since={level: _at(at) for level, at in me.unstarted_since.items()},
        pod=this_pod(),
        **_clock_fields(me.started),
    )
    if not draining:
        info.state = node_state(info, info.heartbeat_at, me.task_timeout)
    info.quiet = me.quiet  # after: its own state stays one an older API reads (which API shows quiet: from this)
    return info


def api_node_info(
    node_id: str,
    *,
    started: float,
    in_flight: int = 0,
    processed: int = 0,
    failed: int = 0,
    last_error: str | None = None,
    draining: bool = False,
    heartbeat_interval: float | None = None,
    partitions: int | None = None,
) -> NodeInfo:
    """The heartbeat of an API node (``processed``/``failed`` count requests, when the caller tracks them;
    ``heartbeat_interval``: seconds between its beats, its ``registry.heartbeat_interval``; ``partitions``: its
    ``queue.partitions``)."""
    now = utcnow()
    return NodeInfo(
        id=node_id,
        role="api",
        host=this_host(),
        pid=os.getpid(),
        version=VERSION,
        fence=CREATE_FENCE,
        started_at=_at(started),
        heartbeat_at=now,
        in_flight=in_flight,
        processed=processed,
        failed=failed,
        last_error=last_error,
        heartbeat_interval=heartbeat_interval,
        state="draining" if draining else "ok",
        partitions=partitions,
        **_clock_fields(started),
    )


def _clock_fields(started: float) -> dict[str, float | None]:
    """A heartbeat's ``clockOffsetSeconds``, ``clockErrorSeconds`` and ``uptimeSeconds`` (module docstring)."""
    offset, error = measured()
    return {"clock_offset_seconds": offset, "clock_error_seconds": error, "uptime_seconds": uptime(started)}


def incarnation(node_id: str, pid: int, started_at: datetime) -> str:
    """One process of a node, ``"<node id>:<pid>@<started at, ISO 8601>"`` (pure): what tells two processes with the
    same id apart (``gamead up`` restarts a worker under its id). Of a heartbeat: ``incarnation(n.id, n.pid,
    n.started_at)``."""
    return f"{node_id}:{pid}@{started_at.isoformat()}"


def incarnation_id(origin: str) -> str:
    """The node id of an :func:`incarnation` (``"<node id>:<pid>@<started at>"``), the text before its last ``:``
    ahead of its last ``@`` (an id may hold either); "" for a text of another form. Pure."""
    return origin.rpartition("@")[0].rpartition(":")[0]


def api_incarnation(node_id: str, started: float) -> str:
    """:func:`incarnation` of this API process (``started``: epoch seconds, as given to :func:`api_node_info`):
    the ``Gamead-Origin`` of its record creates."""
    return incarnation(node_id, os.getpid(), _at(started))


def same_incarnation(a: NodeInfo, b: NodeInfo) -> bool:
    """True when two registry entries are of one process: same host, pid and start time (pure)."""
    return (a.host, a.pid, a.started_at) == (b.host, b.pid, b.started_at)


def deaths(before: dict[str, NodeInfo], after: dict[str, NodeInfo],
           counts: Callable[[NodeInfo], bool]) -> list[NodeInfo]:
    """The nodes of ``before`` (by id) that ``counts`` and that are gone from ``after`` or came back as another
    incarnation: another host, pid or start time under the same id (``gamead up`` restarts a child under its
    name). Pure; a vanished entry may also be a clean shutdown (deleted): the caller asks the registry."""
    out = []
    for node_id, old in before.items():
        new = after.get(node_id)
        if counts(old) and (new is None or not same_incarnation(old, new)):
            out.append(old)
    return out


def new_api_node_id() -> str:
    """``api-<host>-<pid>-<6 chars of a ULID>``: the host name's characters outside the node-id set
    (:data:`~.wire.NODE_ID_PATTERN`) as ``_``, at most 200 of them, so the id is always one the registry takes. The
    random part is a worker id's (:func:`gamead_core.ids.new_worker_id`): two API processes with one host name and
    one pid (containers sharing the host's name, gamead as PID 1 in each) shared ``api-<host>-<pid>``, one registry
    key, and each worker's reaper read one's beats as the other's death (attack44 F1 addendum 2)."""
    host = re.sub(r"[^-_.:@=A-Za-z0-9]", "_", socket.gethostname())[:200] or "_"
    return f"api-{host}-{os.getpid()}-{id_tail()}"


__all__ = ["POD_NAME_ENV", "POD_NAME_PATTERN", "RECENT_WINDOW", "VERSION", "WorkerSelf", "api_incarnation",
           "api_node_info", "deaths", "earlier_node_key", "incarnation", "incarnation_id", "same_incarnation",
           "new_api_node_id", "node_key", "server_started", "pod_name", "this_host", "this_pod", "uptime",
           "worker_node_info"]
