"""A liveness probe of local workers and the API (``gamead up``): a process whose registry heartbeat is not
renewed for the registry's liveness bound, and which does not answer its own liveness endpoint either, is
replaced, as a Kubernetes liveness probe replaces a container (the API too since a drill froze it, ``kill
-STOP``, for 21 s and ``gamead up`` never named it).

The bound is the registry's own: ``registry.ttl``, the silence after which a node's entry expires, it is gone
from ``gamead workers`` and the autoscaler's count, and the reaper (:func:`gamead_core.worker.reaper_loop.run_reaper`)
recovers what it held. A process that still exists past it is frozen (SIGSTOP, a frozen cgroup) or hung: the
supervisor, which sees only processes, would count it as live for ever. :class:`HeartbeatProbe` tells which
ones (pure bookkeeping, clocked by ``time.monotonic``); :func:`run_probe` reads the registry every
``registry.heartbeat_interval`` s and hands each such worker to a callback, which kills it (SIGKILL: a stopped
process dies by nothing else) so that the supervisor restarts it and its held ads are recovered as for any
dead worker.

Silent is not yet hung: on a machine overloaded with work (load 17 on 2 cores), a busy worker can go past
``registry.ttl`` without a beat because it is starved of CPU. Before a kill, :func:`judge` (pure) looks at the
process (:func:`gamead_core.proc.cpu_sample`): one stopped (SIGSTOP, state ``T``) or one asleep that used no CPU
since the previous reading is frozen or hung and killed at once; one that kept using CPU, or is runnable (state
``R``) and waits for a CPU, is busy or starved, and gets up to :data:`BUSY_FACTOR` × ``registry.ttl`` of silence
before it is killed as wedged (a loop spinning without beating), so a loop that never yields again is replaced.

Silence alone never kills (review26 F7): a heartbeat is a KV *write*, and writes can fail (JetStream's store at
its limit, "insufficient resources") while the process serves and reads work. Before :func:`judge` looks at CPU,
``run_probe`` asks each silent process itself (its ``check``: :func:`gamead_core.scaling.answers.ask`): the API
on its ``/healthz``, a worker on its ``/metrics`` (served from the worker's own event loop; a worker run without
metrics has no endpoint and is judged on its process state and CPU readings alone). One that answers 200-399
within :data:`~gamead_core.scaling.answers.ANSWER_TIMEOUT` is alive (``answering``) and left running, however
long its silence: it cannot write its heartbeat, which is the operator's to fix. A stopped process (SIGSTOP) or
one whose event loop is blocked or spinning does not answer, and is judged as before.

Entries are matched to processes on this machine only: a worker by its id and pid, the API by its host and pid
(:func:`api_key`), so an entry of another machine sharing the NATS (``nats.url``) whose process has the same pid
never stands in for a local process's heartbeat.

Renewals are timed on the observer's clock, when it sees an entry's ``heartbeatAt`` change, never by comparing
clocks. What the observer could not see is no evidence: after a failed read of the registry, every worker's
clock starts again at the next good one (a NATS restart empties the memory-stored registry too). A process
that has not beaten yet gets :data:`START_GRACE` more for its start (imports, connecting), as a startup
probe does.

A process's first beat must be its own (review28 L1): an entry with its id, host and pid can be a dead
predecessor's, left in the registry for up to ``registry.ttl`` (a container restarted with ``nats.url``: same
hostname, same fork order, same pids). An entry counts for a process only if it says it started (``startedAt``,
the process's own wall clock, on this machine) at or after the process was spawned (:attr:`Watched.
started_wall`, less :data:`START_SKEW`), or once its ``heartbeatAt`` changes after the first reading (a dead
process's entry never changes: this holds even if the wall clock stepped back between the two).

Only silence the probe saw counts (attack32a F10, :mod:`gamead_core.scaling.gaps`: a gap between two readings
past its interval plus ``LATE`` s is not counted; the first reading after it hands over, once, a child past the
bound only with the gap, :attr:`HeartbeatProbe.late`, to be named, not killed; a kill line gives both figures). A
reading ended after the stop began is not observed: the stop's time is no stall of the probe's (fix35d). """

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from gamead_core.errors import error_text
from gamead_core.proc import CpuSample, cpu_sample
from gamead_core.registry.wire import NodeInfo
from gamead_core.scaling.answers import Answer
from gamead_core.scaling.gaps import unseen

log = logging.getLogger(__name__)

#: Seconds a (re)started worker process gets, beyond ``registry.ttl``, to write its first heartbeat.
START_GRACE = 30.0
#: A silent worker still using CPU (busy or starved, not hung) is killed only after this many times
#: ``registry.ttl`` of silence (plus :data:`START_GRACE` before its first beat).
BUSY_FACTOR = 3.0
#: Seconds an entry's ``startedAt`` may be before its process's spawn and still be its own (both read on this
#: machine's wall clock: the entry's is taken after the spawn; this allows for rounding, not for another clock).
START_SKEW = 1.0


@dataclass(frozen=True)
class Watched:
    """One worker process to watch: its child name (``worker-1``), worker id (``local-1``), pid, the
    ``time.monotonic()`` of its start and the ``time.time()`` of its spawn (``started_wall``, epoch s; None:
    unknown, any entry with its pid is its own)."""

    name: str
    worker_id: str
    pid: int
    started_at: float
    started_wall: float | None = None


def api_key(pid: int, host: str) -> str:
    """The ``worker_id`` a :class:`Watched` API process is watched under, ``api@<host>/<pid>``: an API entry is
    matched by the host *and* pid it announces (its node id ``api-HOST-PID-RANDOM``, :func:`gamead_core.registry.nodes.
    new_api_node_id`), so another machine's API with the same pid never stands in for ours."""
    return f"api@{host}/{pid}"


@dataclass(frozen=True)
class Silent:
    """A worker process that has not renewed its heartbeat for longer than the bound: ``silent_for`` s."""

    name: str
    worker_id: str
    pid: int
    silent_for: float
    beat_before: bool  #: it had beaten since its start (False: it never wrote its first heartbeat)
    real: float | None = None  #: its whole silence (s) when the watch did not see all of it (``silent_for``: seen)
    gap: float = 0.0  #: then, the longest time (s) the watch itself did not run


@dataclass(frozen=True)
class Verdict:
    """What to do with a :class:`Silent` worker (:func:`judge`). ``kill``: kill it now, or leave it running;
    ``why``: ``stopped`` (state T/t: SIGSTOP, a frozen cgroup, a debugger), ``idle`` (asleep, no CPU used
    since the previous reading: hung), ``unknown`` (its process cannot be read), ``busy`` (it used CPU, or is
    runnable and waits for one: busy or starved, left running), ``wedged`` (so, but silent past ``limit``) or
    ``answering`` (its liveness endpoint answered: alive, it only cannot write its heartbeat; left running);
    ``limit``: the silence (s) such a busy worker gets; ``cpu_used``: CPU seconds it used over the last ``over``
    seconds (None if unknown); ``state``: its scheduler state (``R``, ``S``, ``D``, ``T`` …; None if unknown);
    ``answer``: what its liveness endpoint did (:attr:`Answer.said`; None: it has none)."""

    kill: bool
    why: str
    limit: float
    cpu_used: float | None = None
    over: float | None = None
    state: str | None = None
    answer: str | None = None

    def cpu_words(self, otherwise: str = "") -> str:
        """``0.40s of CPU in the last 1.0s, state R`` for a console line; ``otherwise`` when either is unknown."""
        if self.cpu_used is None or self.over is None:
            return otherwise
        return f"{self.cpu_used:.2f}s of CPU in the last {self.over:.1f}s, state {self.state}"


def judge(silent: Silent, ttl: float, before: CpuSample | None, now: CpuSample | None, over: float | None, *,
          start_grace: float = START_GRACE, answer: Answer | None = None) -> Verdict:
    """Kill ``silent`` now, or leave it running? ``before``/``now``: its process's readings (state, CPU time)
    ``over`` seconds apart, the later one taken now (None: not read); ``answer``: what its liveness endpoint did
    just now (None: it has none). One that answered (:attr:`Answer.live`) is never killed: silence alone is no
    proof (module docstring). Pure."""
    limit = BUSY_FACTOR * ttl + (0.0 if silent.beat_before else start_grace)
    said = answer.said if answer is not None else None
    used = (round(max(0.0, now.cpu_seconds - before.cpu_seconds), 3)
            if now is not None and before is not None else None)
    state = now.state if now is not None else None
    if answer is not None and answer.live:
        return Verdict(False, "answering", limit, used, over if used is not None else None, state, said)
    if now is None or before is None or used is None:
        return Verdict(True, "unknown", limit, state=state, answer=said)
    if now.state in ("T", "t"):
        return Verdict(True, "stopped", limit, used, over, now.state, said)
    if used <= 0 and now.state != "R":  # runnable (R) without CPU: waiting for a CPU, starved, not hung
        return Verdict(True, "idle", limit, used, over, now.state, said)
    return Verdict(silent.silent_for > limit, "wedged" if silent.silent_for > limit else "busy", limit, used,
                   over, now.state, said)


@dataclass
class _Seen:
    pid: int
    renewed_at: float  #: monotonic: the last renewal seen (or the start, before the first one)
    beat_at: datetime | None = None  #: its entry's heartbeatAt at the last renewal seen
    stale: datetime | None = None  #: the heartbeatAt of an entry with its pid started before it (a predecessor's)
    unseen: float = 0.0  #: seconds of its present silence the probe did not see (module docstring)
    gap: float = 0.0  #: the longest of those gaps (s)
    said: bool = False  #: its present silence was handed over in :attr:`HeartbeatProbe.late`


class HeartbeatProbe:
    """Which watched worker processes stopped renewing their registry heartbeat for ``ttl`` seconds
    (``registry.ttl``; ``start_grace`` more before their first beat); ``every``: the seconds between two readings
    (``registry.heartbeat_interval``), for the gaps not counted (module docstring; None: every gap counts)."""

    def __init__(self, ttl: float, *, start_grace: float = START_GRACE, every: float | None = None) -> None:
        self.ttl = ttl
        self.start_grace = start_grace
        self.every = every
        self.late: list[Silent] = []  #: by :meth:`observe`: silent past the bound only with its gaps (said once)
        self._seen: dict[str, _Seen] = {}
        self._blind = False
        self._last: float | None = None  #: monotonic: the previous reading

    def blind(self) -> None:
        """The registry could not be read: the next :meth:`observe` starts every clock again."""
        self._blind = True

    def observe(self, workers: list[Watched], entries: Mapping[str, NodeInfo], now: float) -> list[Silent]:
        """Take one reading: ``workers`` that run now, ``entries`` the registry's worker entries by id, ``now``
        monotonic seconds. Returns the workers silent past the bound (each until it is replaced), counting only the
        silence it saw (module docstring: a gap since the previous reading, or a new process's start if later)."""
        blind, self._blind = self._blind, False
        last, self._last, self.late = self._last, now, []
        current = {w.name for w in workers}
        for name in [n for n in self._seen if n not in current]:
            del self._seen[name]
        out = []
        for w in workers:
            seen = self._seen.get(w.name)
            if seen is None or seen.pid != w.pid:
                seen = self._seen[w.name] = _Seen(w.pid, w.started_at)
            elif blind:
                seen.renewed_at, seen.unseen, seen.gap = max(seen.renewed_at, now), 0.0, 0.0
            since = None if last is None or blind or self.every is None else max(last, w.started_at)
            if (skipped := unseen(since, now, self.every or 0.0)) > 0:
                seen.unseen, seen.gap = seen.unseen + skipped, max(seen.gap, now - since)
            entry = entries.get(w.worker_id)
            if entry is not None and entry.pid == w.pid and entry.heartbeat_at != seen.beat_at:
                if seen.beat_at is not None or _own(entry, w, seen):
                    seen.beat_at, seen.renewed_at = entry.heartbeat_at, now
                    seen.unseen = seen.gap = 0.0
                    seen.said = False
                elif seen.stale is None:
                    seen.stale = entry.heartbeat_at  # a predecessor's, or ours if the clock stepped back: wait
            bound = self.ttl + (0.0 if seen.beat_at is not None else self.start_grace)
            real = now - seen.renewed_at
            silent = Silent(w.name, w.worker_id, w.pid, real - seen.unseen, seen.beat_at is not None,
                            real if seen.unseen > 0 else None, seen.gap)
            if silent.silent_for > bound:
                out.append(silent)
            elif skipped > 0 and real > bound and not seen.said:
                seen.said = True
                self.late.append(silent)
        return out

    def beaten(self, name: str, pid: int) -> bool:
        """Has worker ``name``, as process ``pid``, written a registry heartbeat since its (re)start (seen by
        :meth:`observe`)?"""
        seen = self._seen.get(name)
        return seen is not None and seen.pid == pid and seen.beat_at is not None

    def unhealthy(self, name: str, pid: int | None, now: float) -> bool:
        """Is worker ``name``, now process ``pid``, not known to be serving: never beaten since its (re)start
        (a restarted process is judged on its own beats, never on its predecessor's), or silent past the bound?
        (A scale-down stops such workers before healthy ones.)"""
        seen = self._seen.get(name)
        if seen is None or seen.pid != pid or seen.beat_at is None:
            return True
        return now - seen.renewed_at - seen.unseen > self.ttl


def _own(entry: NodeInfo, w: Watched, seen: _Seen) -> bool:
    """Is ``entry`` (with ``w``'s pid) written by process ``w``, not by a dead predecessor with the same pid (module
    docstring)? Its start is at or after ``w``'s spawn, or its heartbeat changed since the first reading."""
    if w.started_wall is None or entry.started_at.timestamp() >= w.started_wall - START_SKEW:
        return True
    return seen.stale is not None and entry.heartbeat_at != seen.stale


async def run_probe(
    probe: HeartbeatProbe,
    read: Callable[[], Awaitable[list[NodeInfo]]],
    workers: Callable[[], list[Watched]],
    on_silent: Callable[[Silent, Verdict], None],
    stop: asyncio.Event,
    interval: float,
    *,
    sample: Callable[[int], CpuSample | None] = cpu_sample,
    on_back: Callable[[Watched, float], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    check: Callable[[Watched], Awaitable[Answer | None]] | None = None,
    host: str | None = None,
    on_beat: Callable[[Watched], None] | None = None,
    on_late: Callable[[Silent], None] | None = None,
) -> None:
    """Every ``interval`` s until ``stop``: ``read()`` the registry's entries, ``sample(pid)`` each worker of
    ``workers()`` (state, CPU time), ``check(worker)`` each one silent past the bound (its liveness endpoint,
    :func:`gamead_core.scaling.answers.ask`; None: it has none; all at once), and call ``on_silent`` for each with
    :func:`judge`'s verdict (a worker left running is handed over again at each reading until it beats or is
    killed; one with no earlier reading of its process, at the next); ``on_back(worker, silent_for)`` once such a
    worker beats again after ``silent_for`` s. ``clock``: the observer's clock (s); ``host``: the machine whose
    entries count (default: this one's hostname, as its processes announce it); ``on_beat(worker)`` at each
    reading for each worker that has beaten since its start (it is serving: ``gamead up`` ends its start,
    :meth:`gamead_core.supervisor.Supervisor.seen_up`); ``on_late(silent)`` for each of :attr:`HeartbeatProbe.
    late` (silent past the bound only with a gap). Never raises (a failed read is logged and makes the probe
    :meth:`~HeartbeatProbe.blind`; a failed check counts as no answer; so is a failing hook)."""
    host = socket.gethostname() if host is None else host
    readings: dict[int, tuple[float, CpuSample]] = {}  # pid → (monotonic time, its previous reading)
    waiting: dict[tuple[str, int], float] = {}  # (name, pid) left running while silent → its silence (s)
    while not stop.is_set():
        try:
            entries = {n.id if n.role == "worker" else api_key(n.pid, n.host): n
                       for n in await read() if n.role in ("worker", "api") and n.host == host}
            if stop.is_set():  # a stop begun during the read: its time is no stall of the probe's (fix35d)
                break
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the probe must outlive any one bad read
            log.info("liveness probe: cannot read the registry: %s", error_text(exc))
            probe.blind()
        else:
            watched, now = workers(), clock()
            current = {w.pid: (now, s) for w in watched if (s := sample(w.pid)) is not None}
            silent_now = set()
            silents = probe.observe(watched, entries, now)
            for hook, w in [*((on_beat, w) for w in watched if on_beat and probe.beaten(w.name, w.pid)),
                            *((on_late, s) for s in probe.late if on_late)]:
                try:
                    hook(w)  # type: ignore[arg-type]
                except Exception:  # a failing hook is logged, never fatal
                    log.exception("liveness probe: a hook failed for %s", w.name)
            answers = await _answers(check, [w for s in silents for w in watched if w.name == s.name])
            for silent in silents:
                silent_now.add((silent.name, silent.pid))
                before, reading = readings.get(silent.pid), current.get(silent.pid)
                if before is None and reading is not None:  # no CPU seen yet (the probe's first reading): the next
                    continue  # judges it on what it saw, never kills it for lack of a reading (flakes52C)
                verdict = judge(silent, probe.ttl, before[1] if before else None, reading[1] if reading else None,
                                now - before[0] if before else None, start_grace=probe.start_grace,
                                answer=answers.get((silent.name, silent.pid)))
                if not verdict.kill:
                    waiting[(silent.name, silent.pid)] = silent.silent_for
                try:
                    on_silent(silent, verdict)
                except Exception:  # a failing hook is logged, never fatal
                    log.exception("liveness probe: on_silent failed for %s", silent.name)
            for w in watched:
                if (w.name, w.pid) in waiting and (w.name, w.pid) not in silent_now and on_back is not None:
                    on_back(w, waiting[(w.name, w.pid)])
            waiting = {key: silence for key, silence in waiting.items() if key in silent_now}
            readings = current
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)


async def _answers(check: Callable[[Watched], Awaitable[Answer | None]] | None,
                   workers: list[Watched]) -> dict[tuple[str, int], Answer]:
    """``check`` each of ``workers`` at once: (name, pid) → its answer; none for one without an endpoint. A check
    that raises counts as no answer (its error said)."""
    if check is None or not workers:
        return {}
    got = await asyncio.gather(*(check(w) for w in workers), return_exceptions=True)
    out = {}
    for w, answer in zip(workers, got, strict=True):
        if isinstance(answer, asyncio.CancelledError):
            raise answer
        if isinstance(answer, BaseException):
            out[(w.name, w.pid)] = Answer(False, f"its liveness check failed: {error_text(answer)}")
        elif answer is not None:
            out[(w.name, w.pid)] = answer
    return out


__all__ = ["BUSY_FACTOR", "START_GRACE", "START_SKEW", "HeartbeatProbe", "Silent", "Verdict", "Watched", "api_key",
           "judge", "run_probe"]
