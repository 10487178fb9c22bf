"""Jobs in KV bucket ``gamead_jobs``: the document (``job.<id>``, compare-and-set on its revision) and the work
list in chunks (``job.<id>.work.<n>``: ``{"items": [...], "marks": "..."}``). The bucket keeps one revision per
key and drops keys not written for ``jobs.retention`` seconds (its ``max_age``), within ``jobs.max_bytes``.
Any API node can read any job; only the node holding a job's lease writes its work list.
"""

from __future__ import annotations

import bisect
import logging
from dataclasses import dataclass, field
from typing import Any

import nats.js.errors
import orjson
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType
from nats.js.kv import KeyValue
from pydantic import ValidationError

from gamead_core import names
from gamead_core.config import JobSettings
from gamead_core.errors import Conflict, NotFound
from gamead_core.full_stores import jobs_boundary
from gamead_core.ids import is_job_id
from gamead_core.jobs.model import Job, JobKind, JobState, Mark
from gamead_core.queue.connection import nats_boundary
from gamead_core.queue.snapshot import read_snapshot
from gamead_core.store.cas import StillBusy, create_key, retry_busy

log = logging.getLogger(__name__)

CHUNK_ITEMS = 1000  #: most items in one chunk of a work list
CHUNK_BYTES = 256 * 1024  #: most bytes of items in one chunk (well under NATS' 1 MiB message default)


def jobs_kv_config(settings: JobSettings, replicas: int) -> KeyValueConfig:
    """The jobs bucket, as ``gamead_core.queue.topology`` declares it: one revision per key, keys dropped
    ``jobs.retention`` after their last write, within ``jobs.max_bytes``."""
    return KeyValueConfig(
        bucket=names.JOBS_BUCKET,
        description="gamead operator jobs (DLQ replay, purge, import): documents and work lists",
        history=1,
        ttl=settings.retention,
        direct=True,  # GET /v1/jobs reads the documents by key, 1,024 a direct get (gamead_core.queue.snapshot)
        max_bytes=settings.max_bytes,
        storage=StorageType.FILE,
        replicas=replicas,
    )


def chunk_bounds(items: list[Any]) -> list[tuple[int, int]]:
    """Split ``items`` into chunks of at most :data:`CHUNK_ITEMS` items and about :data:`CHUNK_BYTES`.
    Pure. An empty list has one empty chunk."""
    bounds: list[tuple[int, int]] = []
    start = size = 0
    for i, item in enumerate(items):
        n = len(orjson.dumps(item))
        if i > start and (i - start >= CHUNK_ITEMS or size + n > CHUNK_BYTES):
            bounds.append((start, i))
            start, size = i, 0
        size += n
    bounds.append((start, len(items)))
    return bounds


@dataclass
class WorkList:
    """A job's items and their marks, in memory; ``dirty`` chunks are written at the next checkpoint."""

    items: list[Any]
    marks: bytearray
    bounds: list[tuple[int, int]]
    dirty: set[int] = field(default_factory=set)

    @classmethod
    def new(cls, items: list[Any]) -> WorkList:
        bounds = chunk_bounds(items)
        return cls(items, bytearray(Mark.PENDING * len(items), "ascii"), bounds, set(range(len(bounds))))

    def mark(self, index: int) -> str:
        return chr(self.marks[index])

    def __post_init__(self) -> None:
        self._starts = [b[0] for b in self.bounds]

    def set(self, index: int, mark: str) -> None:
        if self.marks[index] != ord(mark):
            self.marks[index] = ord(mark)
            self.dirty.add(bisect.bisect_right(self._starts, index) - 1)

    def text(self) -> str:
        return self.marks.decode("ascii")

    def find(self, mark: str, start: int, limit: int) -> list[int]:
        """Indexes of up to ``limit`` items marked ``mark``, from ``start`` on, wrapping round to the start of
        the list (each index at most once). Costs one ``bytearray.find`` per index found plus one pass."""
        found: list[int] = []
        code, n = ord(mark), len(self.marks)
        for lo, hi in ((min(start, n), n), (0, min(start, n))):
            at = self.marks.find(code, lo, hi)
            while at >= 0 and len(found) < limit:
                found.append(at)
                at = self.marks.find(code, at + 1, hi)
        return found

    def first_pending(self) -> int:
        at = self.marks.find(ord(Mark.PENDING))
        return len(self.items) if at < 0 else at


class JobStore:
    """Reads and writes job documents and work lists. NATS errors leave as gamead errors."""

    def __init__(self, js: JetStreamContext, kv: KeyValue, *, reads: JetStreamContext | None = None) -> None:
        self._js = js
        self._kv = kv
        self._reads = reads or js  #: what :meth:`list` reads through (the API's reads connection: api.read_conn)

    @classmethod
    async def open(cls, js: JetStreamContext, *, reads: JetStreamContext | None = None) -> JobStore:
        """Bind the jobs bucket. It is declared with every other object in ``gamead_core.queue.topology``
        (:func:`jobs_kv_config`): the topology check of every API node creates it, applies changed limits at
        start-up and recreates it within ``api.topology_check_interval`` if it is deleted. Raises
        :class:`~gamead_core.errors.TopologyMissing` while it is missing, QueueUnavailable if NATS does not
        answer."""
        with nats_boundary():
            kv = await js.key_value(names.JOBS_BUCKET)
        return cls(js, kv, reads=reads)

    @staticmethod
    def _encode(job: Job) -> bytes:
        return job.model_dump_json(by_alias=True).encode()

    async def create(self, job: Job) -> int:
        """Write a new job's document. Raises :class:`~gamead_core.full_stores.JobsFull` (503 ``jobs_full``) when
        the bucket is at ``jobs.max_bytes``, as every write here (attack31a F9: it answered ``queue_full``)."""
        with jobs_boundary():
            return await create_key(self._kv, names.job_key(job.id), self._encode(job))

    async def get(self, job_id: str) -> tuple[Job, int]:
        """The job and its revision; :class:`NotFound` (also for a string that is not a job id)."""
        if not is_job_id(job_id):
            raise NotFound(f"no job with id {job_id[:40]!r}")
        with nats_boundary():
            try:
                entry = await self._kv.get(names.job_key(job_id))
            except nats.js.errors.KeyNotFoundError as exc:
                raise NotFound(f"no job with id {job_id!r} (jobs are kept for jobs.retention)") from exc
        if entry.value is None:
            raise NotFound(f"no job with id {job_id!r}")
        return Job.model_validate_json(entry.value), entry.revision or 0

    async def update(self, job: Job, revision: int) -> int:
        """Compare-and-set: write ``job`` only if its stored revision is still ``revision``; :class:`Conflict` if
        it lost. A busy answer (another write of the job in flight on a replicated bucket) is tried again first
        (:func:`gamead_core.store.cas.retry_busy`; before fix34b it was a Conflict at once, and the runner's ten
        quick re-reads could all meet it); one still busy after those tries is a Conflict, read again by callers."""
        written = await self.swap_key(names.job_key(job.id), self._encode(job), revision)
        if written is None:
            raise Conflict(f"job {job.id} changed since revision {revision}")
        return written

    async def read_key(self, key: str) -> tuple[bytes, int] | None:
        """The value and revision of ``key``, a key of the bucket other than a job's (a claim); None when it has
        no live value. Raises QueueUnavailable if NATS does not answer."""
        with nats_boundary():
            try:
                entry = await self._kv.get(key)
            except nats.js.errors.KeyNotFoundError:  # deleted or purged too
                return None
        return entry.value or b"", entry.revision or 0

    async def swap_key(self, key: str, value: bytes, revision: int | None) -> int | None:
        """Compare-and-set ``key`` (as :meth:`read_key`'s): create it (``revision`` None: it had no live value) or
        replace its revision ``revision``. The new revision; None when another write came first (or is still in
        flight: read again). Raises JobsFull, QueueUnavailable."""
        with jobs_boundary():
            try:
                if revision is None:
                    return await create_key(self._kv, key, value)
                return await retry_busy(lambda: self._kv.update(key, value, last=revision))
            except (nats.js.errors.KeyWrongLastSequenceError, StillBusy):
                return None

    async def drop_key(self, key: str, revision: int) -> None:
        """Delete ``key`` if it is still at ``revision`` (compare-and-set; a newer write is left as it is)."""
        with jobs_boundary():
            try:
                await retry_busy(lambda: self._kv.delete(key, last=revision))
            except (nats.js.errors.KeyWrongLastSequenceError, StillBusy):
                pass

    async def save_work(self, job_id: str, work: WorkList) -> None:
        """Write the dirty chunks of ``work`` (then they are clean)."""
        for n in sorted(work.dirty):
            start, end = work.bounds[n]
            value = orjson.dumps({"items": work.items[start:end], "marks": work.marks[start:end].decode("ascii")})
            with jobs_boundary():
                await self._kv.put(names.job_work_key(job_id, n), value)
        work.dirty.clear()

    async def load_work(self, job_id: str, chunks: int) -> WorkList:
        """The work list written by :meth:`save_work` (``chunks`` chunks)."""
        items: list[Any] = []
        marks = bytearray()
        bounds: list[tuple[int, int]] = []
        for n in range(chunks):
            with nats_boundary():
                try:
                    entry = await self._kv.get(names.job_work_key(job_id, n))
                except nats.js.errors.KeyNotFoundError as exc:
                    raise NotFound(f"job {job_id}: chunk {n} of its work list is gone") from exc
            data = orjson.loads(entry.value or b"{}")
            start = len(items)
            items.extend(data.get("items", []))
            marks.extend(str(data.get("marks", "")).encode("ascii"))
            bounds.append((start, len(items)))
        if len(marks) != len(items):
            raise NotFound(f"job {job_id}: its work list is damaged")
        return WorkList(items, marks, bounds or [(0, 0)])

    async def list(self, *, kind: JobKind | None = None, state: JobState | None = None,
                   limit: int = 50) -> list[Job]:
        """Jobs newest first (ids are ULIDs), filtered; reads every job document in the bucket (bounded by
        ``jobs.retention``) as of one sequence, each once, a job rewritten during the read at its revision when
        read (:func:`~gamead_core.queue.snapshot.read_snapshot`; fix35b: 2 of 3 running jobs listed). Raises
        :class:`~gamead_core.queue.scan.ScanIncomplete` when the read stalls (never a short list)."""
        last: dict[str, Job | None] = {}  # by key: the last revision read (None: deleted or not a job)
        async for msg in read_snapshot(self._reads, names.kv_stream(names.JOBS_BUCKET), names.JOBS_DOC_SUBJECTS):
            last[msg.subject] = None
            if not msg.data or (msg.headers and msg.headers.get(names.HDR_KV_OPERATION)):
                continue
            try:
                job = Job.model_validate_json(msg.data)
            except ValidationError:
                continue
            if (kind is None or job.kind == kind) and (state is None or job.state == state):
                last[msg.subject] = job
        found = [job for job in last.values() if job is not None]
        found.sort(key=lambda j: j.id, reverse=True)
        return found[:limit]
