"""The service registry: every API node and worker heartbeats its state into a KV bucket with a TTL.

A node puts a :class:`NodeInfo` every ``registry.heartbeat_interval`` seconds under its own key; the bucket's
``max_age`` (``registry.ttl``) removes the entry of a node that stops, so a crashed node disappears on its
own. A node that shuts down cleanly deletes its entry at once.

Reading is cheap enough to do every second: :meth:`Registry.list` is one batched direct-get request
(``multi_last`` over the bucket's subjects, JetStream ≥ 2.11) that answers with the last entry of every key
and an end-of-batch marker — no consumer is created. Buckets without direct access fall back to
``keys()`` + ``get()``.

Health is decided by pure functions: :func:`is_stuck` (in flight, yet nothing finished for longer than the
task timeout) and :func:`node_state`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import re
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from importlib import metadata
from typing import TYPE_CHECKING, Literal

import nats.errors
import nats.js.errors
import orjson
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType
from nats.js.kv import KeyValue
from pydantic import BaseModel, ValidationError

from gamead_core import names
from gamead_core.config import RegistrySettings
from gamead_core.errors import QueueUnavailable, TopologyError
from gamead_core.models import _WIRE, utcnow
from gamead_core.queue.connection import translate
from gamead_core.shutdown import last_write
from gamead_core.telemetry.histogram import LatencyBuckets

if TYPE_CHECKING:
    from gamead_core.worker.runtime import Worker

log = logging.getLogger(__name__)

Role = Literal["api", "worker"]
State = Literal["ok", "idle", "stuck", "draining"]

#: Processing and queue-wait figures in a heartbeat cover the ads finished in this many seconds.
RECENT_WINDOW = 60.0
#: Most entries one ``list()`` reads (far more nodes than any deployment runs).
_MAX_NODES = 4096
_KEY_UNSAFE = re.compile(r"[^-_=a-zA-Z0-9]")
_STATUS = "Status"


# --- wire types ---------------------------------------------------------------------------------------


class Percentiles(BaseModel):
    """p50/p95/p99 in milliseconds of ``count`` samples (all None when there are none)."""

    model_config = _WIRE

    p50: float | None = None
    p95: float | None = None
    p99: float | None = None
    count: int = 0


class HeldAd(BaseModel):
    """One ad a worker holds: pulled and not yet settled (acknowledged or handed back)."""

    model_config = _WIRE

    ad_id: str
    delivery: str  #: ``"<stream seq>.<delivery count>"`` (see gamead_core.worker.budget.delivery_id)
    ack_subject: str  #: the delivery's reply subject: whoever notices the worker's death ``nak``\ s it there


class NodeInfo(BaseModel):
    """One heartbeat: who the node is and how it is doing. camelCase on the wire."""

    model_config = _WIRE

    id: str
    role: Role
    host: str
    pid: int
    version: str
    started_at: datetime
    heartbeat_at: datetime
    concurrency: int = 0
    in_flight: int = 0
    processed: int = 0
    failed: int = 0
    last_error: str | None = None
    processing_ms: Percentiles = Percentiles()
    queue_wait_ms: Percentiles = Percentiles()
    last_progress_at: datetime | None = None
    state: State = "ok"
    task_timeout: float | None = None  #: the node's own ``worker.task_timeout`` (for the stuck check)
    #: A worker's held ads (written before their analyses start), so that whoever notices its death can
    #: hand them to other workers at once (gamead_core.worker.reaper).
    holding: list[HeldAd] = []
    ack_wait: float | None = None  #: the worker's ``queue.ack_wait`` (when its ads return by themselves)
    metrics_url: str | None = None  #: where the node's Prometheus metrics are served (gamead_core.telemetry)
    latency_buckets: LatencyBuckets | None = None  #: a worker's last-minute histograms (summed by /v1/stats)


# --- pure decisions -----------------------------------------------------------------------------------


def percentiles(values: Iterable[float]) -> Percentiles:
    """Nearest-rank p50/p95/p99 of ``values``."""
    data = sorted(values)
    if not data:
        return Percentiles()

    def rank(q: float) -> float:
        return round(data[max(0, math.ceil(q * len(data)) - 1)], 3)

    return Percentiles(p50=rank(0.50), p95=rank(0.95), p99=rank(0.99), count=len(data))


def is_stuck(info: NodeInfo, now: datetime, task_timeout: float) -> bool:
    """A worker is stuck when it holds ads yet finished nothing for longer than ``task_timeout``."""
    if info.role != "worker" or info.in_flight <= 0:
        return False
    since = info.last_progress_at or info.started_at
    return (now - since).total_seconds() > task_timeout


def node_state(info: NodeInfo, now: datetime, task_timeout: float) -> State:
    """The state to show: the node's own ``draining``, else ``stuck`` / ``idle`` / ``ok`` as seen at ``now``."""
    if info.state == "draining":
        return "draining"
    if is_stuck(info, now, info.task_timeout or task_timeout):
        return "stuck"
    if info.role == "worker" and info.in_flight <= 0:
        return "idle"
    return "ok"


def node_key(node_id: str) -> str:
    """The KV key of a node: its id with every character a key cannot hold replaced by ``_``."""
    return _KEY_UNSAFE.sub("_", node_id) or "_"


def _version() -> str:
    try:
        return metadata.version("gamead")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0.0.0"


VERSION = _version()


def _at(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, timezone.utc)


def worker_node_info(worker: Worker, *, draining: bool = False, now: float | None = None) -> NodeInfo:
    """The heartbeat of a :class:`~gamead_core.worker.runtime.Worker`, from its counters and recent samples."""
    now = time.time() if now is None else now
    stats = worker.stats
    cutoff = now - RECENT_WINDOW
    recent = [s for s in list(stats.recent) if s[0] >= cutoff]
    info = NodeInfo(
        id=worker.id,
        role="worker",
        host=socket.gethostname(),
        pid=os.getpid(),
        version=VERSION,
        started_at=_at(stats.started),
        heartbeat_at=_at(now),
        concurrency=worker.concurrency,
        in_flight=stats.in_flight,
        processed=stats.processed,
        failed=stats.failed,
        last_error=stats.last_error,
        processing_ms=percentiles(s[1] for s in recent),
        queue_wait_ms=percentiles(s[2] for s in recent),
        last_progress_at=_at(stats.last_progress),
        task_timeout=worker.settings.worker.task_timeout,
        state="draining" if draining else "ok",
        holding=worker.holding(),
        ack_wait=worker.settings.queue.ack_wait,
        metrics_url=worker.metrics.url,
        latency_buckets=LatencyBuckets(**worker.metrics.buckets(now)),
    )
    if not draining:
        info.state = node_state(info, info.heartbeat_at, worker.settings.worker.task_timeout)
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
) -> NodeInfo:
    """The heartbeat of an API node (``processed``/``failed`` count requests, when the caller tracks them)."""
    now = utcnow()
    return NodeInfo(
        id=node_id,
        role="api",
        host=socket.gethostname(),
        pid=os.getpid(),
        version=VERSION,
        started_at=_at(started),
        heartbeat_at=now,
        in_flight=in_flight,
        processed=processed,
        failed=failed,
        last_error=last_error,
        state="draining" if draining else "ok",
    )


def new_api_node_id() -> str:
    return f"api-{socket.gethostname()}-{os.getpid()}"


# --- the KV adapter -----------------------------------------------------------------------------------


def bucket_config(settings: RegistrySettings, replicas: int = 1) -> KeyValueConfig:
    return KeyValueConfig(
        bucket=names.REGISTRY_BUCKET,
        description="gamead service registry: one heartbeat per API node and worker",
        history=1,
        ttl=settings.ttl,
        storage=StorageType.MEMORY,  # heartbeats are rewritten every few seconds; nothing to keep on disk
        replicas=replicas,
        direct=True,
    )


class Registry:
    """The registry bucket. Construct without I/O; the bucket is created (idempotently) on first use."""

    def __init__(
        self, nc: NATS, js: JetStreamContext, settings: RegistrySettings, *, replicas: int = 1, timeout: float = 2.0
    ) -> None:
        self._nc = nc
        self._js = js
        self.settings = settings
        self._replicas = replicas
        self._timeout = timeout
        self._kv: KeyValue | None = None
        self._direct = True
        self._lock = asyncio.Lock()

    @property
    def connected(self) -> bool:
        """Is the NATS connection up right now (not reconnecting, not closed)?"""
        return bool(self._nc.is_connected)

    @property
    def stream(self) -> str:
        return f"KV_{names.REGISTRY_BUCKET}"

    @property
    def prefix(self) -> str:
        return f"$KV.{names.REGISTRY_BUCKET}."

    async def open(self) -> KeyValue:
        """Create the bucket if missing (racing creators agree); reuse one that exists with other limits."""
        if self._kv is not None:
            return self._kv
        async with self._lock:
            if self._kv is not None:
                return self._kv
            try:
                try:
                    kv = await self._js.create_key_value(bucket_config(self.settings, self._replicas))
                except nats.js.errors.BadRequestError as exc:
                    if exc.err_code != 10058:  # not "exists with a different configuration"
                        raise
                    kv = await self._js.key_value(names.REGISTRY_BUCKET)
                    info = await self._js.stream_info(self.stream)
                    have = info.config.max_age
                    if have is not None and abs(have - self.settings.ttl) > 1e-3:
                        log.warning(
                            "registry bucket exists with ttl %.1fs, not the configured %.1fs; using it as is",
                            have, self.settings.ttl,
                        )
                    self._direct = bool(info.config.allow_direct)
            except nats.js.errors.APIError as exc:
                raise TopologyError(
                    f"JetStream refused the registry bucket: {exc.description} (code {exc.err_code})"
                ) from exc
            except (nats.errors.Error, asyncio.TimeoutError) as exc:
                raise translate(exc) from exc
            self._kv = kv
        return kv

    async def put(self, info: NodeInfo) -> None:
        kv = await self.open()
        try:
            await kv.put(node_key(info.id), info.model_dump_json().encode())
        except (nats.errors.Error, asyncio.TimeoutError) as exc:
            raise self._failed(exc) from exc

    async def put_nowait(self, info: NodeInfo) -> None:
        """Send ``info`` as the node's entry without waiting for the server's answer (a plain publish to the
        KV subject). Messages from one connection are applied in order, so a request sent after this call
        (e.g. the record write before an analysis) reaches the server after it. Does nothing before the
        bucket was opened. Never raises: the next periodic beat repairs a lost one."""
        if self._kv is None:
            return
        try:
            await self._nc.publish(f"{self.prefix}{node_key(info.id)}", info.model_dump_json().encode())
        except Exception as exc:  # noqa: BLE001 - best effort; the periodic beat follows
            log.debug("early heartbeat failed: %r", exc)

    async def lookup(self, node_id: str) -> tuple[NodeInfo | None, bool]:
        """``(entry, deleted)`` for ``node_id``: its current entry (None when there is none), and whether
        the last thing written under its key was a deletion (a clean shutdown) rather than nothing at all
        (never written, or expired: the node went silent)."""
        kv = await self.open()
        try:
            entry = await kv.get(node_key(node_id))
        except nats.js.errors.KeyDeletedError:
            return None, True
        except nats.js.errors.KeyNotFoundError:
            return None, False
        except (nats.errors.Error, asyncio.TimeoutError) as exc:
            raise self._failed(exc) from exc
        return (_decode(entry.value) if entry.value else None), False

    async def delete(self, node_id: str) -> None:
        kv = await self.open()
        try:
            await kv.delete(node_key(node_id))
        except (nats.errors.Error, asyncio.TimeoutError) as exc:
            raise self._failed(exc) from exc

    async def list(self) -> list[NodeInfo]:
        """Every live node, sorted by role then id. One request to the server."""
        kv = await self.open()
        try:
            raw = await self._last_values() if self._direct else await self._scan(kv)
        except (nats.errors.Error, asyncio.TimeoutError, QueueUnavailable) as exc:
            raise self._failed(exc) from exc
        nodes = [info for info in map(_decode, raw) if info is not None]
        nodes.sort(key=lambda n: (n.role, n.id))
        return nodes

    def _failed(self, exc: BaseException) -> Exception:
        """Translate ``exc``; and forget the bucket, so the next call re-creates it if it went missing (a
        memory-stored bucket does not survive a NATS restart)."""
        self._kv = None
        return exc if isinstance(exc, QueueUnavailable) else translate(exc)

    async def _last_values(self) -> list[bytes]:
        """The last value of every key: a ``multi_last`` batched direct get, read until its EOB marker."""
        request = orjson.dumps({"multi_last": [f"{self.prefix}>"], "batch": _MAX_NODES})
        inbox = self._nc.new_inbox()
        sub = await self._nc.subscribe(inbox)
        out: list[bytes] = []
        try:
            await self._nc.publish(f"$JS.API.DIRECT.GET.{self.stream}", request, reply=inbox)
            deadline = asyncio.get_running_loop().time() + self._timeout
            while True:
                left = deadline - asyncio.get_running_loop().time()
                if left <= 0:
                    raise QueueUnavailable("JetStream did not finish listing the registry in time")
                msg = await sub.next_msg(timeout=left)
                headers = msg.headers or {}
                status = headers.get(_STATUS)
                if status:
                    if status not in ("204", "404"):  # 204 end of batch, 404 no entries
                        raise QueueUnavailable(f"listing the registry failed: status {status}")
                    if status == "204" and int(headers.get("Nats-Num-Pending", "0") or 0):
                        log.warning("registry holds more than %d nodes; listing the first ones", _MAX_NODES)
                    return out
                if headers.get("KV-Operation") in ("DEL", "PURGE") or headers.get("Nats-Marker-Reason"):
                    continue
                if msg.data:
                    out.append(msg.data)
        finally:
            try:
                await sub.unsubscribe()
            except nats.errors.Error:
                pass

    async def _scan(self, kv: KeyValue) -> list[bytes]:
        """Fallback for a bucket without direct access: keys, then one get per key."""
        try:
            keys = await kv.keys()
        except nats.js.errors.NoKeysError:
            return []
        out: list[bytes] = []
        for key in keys:
            try:
                entry = await kv.get(key)
            except nats.js.errors.KeyNotFoundError:
                continue
            if entry.value:  # an expired key can come back with value None: treat it as missing
                out.append(entry.value)
        return out


def _decode(data: bytes) -> NodeInfo | None:
    try:
        return NodeInfo.model_validate_json(data)
    except ValidationError:
        log.debug("skipping an unreadable registry entry: %r", data[:200])
        return None


# --- heartbeating -------------------------------------------------------------------------------------


async def run_heartbeat(
    registry: Registry, snapshot: Callable[[], NodeInfo], interval: float, stop: asyncio.Event
) -> None:
    """Put ``snapshot()`` every ``interval`` seconds until ``stop`` is set, then delete the entry.

    Never raises: a failed beat is logged (once per outage) and retried at the next tick.
    """
    node_id: str | None = None
    failing = False
    while not stop.is_set():
        try:
            info = snapshot()
            node_id = info.id
            await registry.put(info)
            if failing:
                log.info("heartbeat restored")
            failing = False
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a heartbeat must never take its node down
            if not failing:
                log.warning("heartbeat failed (retrying every %.1fs): %s", interval,
                            getattr(exc, "message", None) or repr(exc))
            failing = True
        try:
            await asyncio.wait_for(stop.wait(), timeout=interval)
        except asyncio.TimeoutError:
            pass
    if node_id is not None:
        try:
            await last_write(lambda: registry.delete(node_id), timeout=2.0, connected=registry.connected)
        except Exception as exc:  # noqa: BLE001 - the TTL removes it anyway
            log.info("could not remove heartbeat of %s on shutdown (the ttl will): %s", node_id,
                     getattr(exc, "message", None) or repr(exc))


@asynccontextmanager
async def heartbeating(
    registry: Registry, snapshot: Callable[[], NodeInfo], interval: float
) -> AsyncIterator[None]:
    """``async with heartbeating(...):`` beats while the block runs; the entry is deleted on the way out."""
    stop = asyncio.Event()
    task = asyncio.create_task(run_heartbeat(registry, snapshot, interval, stop))
    try:
        yield
    finally:
        stop.set()
        await _settle(task, timeout=interval + 3.0)


async def _settle(task: asyncio.Task[None], timeout: float) -> None:
    done, _ = await asyncio.wait({task}, timeout=timeout)
    if not done:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


__all__ = [
    "HeldAd",
    "NodeInfo",
    "Percentiles",
    "Registry",
    "api_node_info",
    "heartbeating",
    "is_stuck",
    "new_api_node_id",
    "node_state",
    "percentiles",
    "run_heartbeat",
    "worker_node_info",
]
