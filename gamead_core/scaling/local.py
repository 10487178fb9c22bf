"""Scaler backends without a cluster: ``local`` worker processes (``gamead up``) and ``none``.

:class:`LocalScaler` owns ``gamead worker`` processes through a :class:`~gamead_core.supervisor.Supervisor`
(the one ``gamead up`` already runs, so a worker that dies is restarted with back-off like any other
child). Scaling up starts ``python -m gamead_cli worker --id local-<k>`` children (``k`` is the lowest
free number, so ids stay ``local-1 … local-N``). Scaling down stops unhealthy workers first (dead and awaiting
their restart, or :attr:`LocalScaler.unhealthy` says so: e.g. frozen, or not beaten yet), then, by their registry
entries (the autoscaler's reading), the quiet ones, then those running and holding the fewest ads, the newest among
equals (:mod:`.local_stops`: the rule of a Kubernetes scale-down), with SIGTERM: they stop pulling, finish their
in-flight ads within ``worker.drain_timeout`` and exit; whoever is still alive ``drain_timeout + 5`` s later is
killed. The waiting runs in a thread (``asyncio.to_thread``) in the background, so neither the event loop nor the
next decision waits for a drain; draining workers no longer count as replicas.

Every call comes from one thread (the event loop's): the supervisor is not thread-safe, so the workers to
stop are first moved to a supervisor of their own, which the background thread alone then touches.

:class:`NoneScaler` changes nothing: it reports the count it was last told (the number of live workers
in the registry, in practice), so the autoscaler still computes and shows what it *would* do.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from functools import partial
from pathlib import Path
from typing import Any, Protocol

from gamead_core.registry.wire import NodeInfo
from gamead_core.scaling.local_ids import worker_id_of
from gamead_core.scaling.local_stops import Running, Stop, to_stop
from gamead_core.supervisor import Supervisor

log = logging.getLogger(__name__)

#: Seconds a stopping worker gets beyond its drain timeout before it is killed.
STOP_GRACE = 5.0


class Scaler(Protocol):
    """What the autoscaler needs of a backend. Errors are :class:`~gamead_core.errors.GameadError`\\ s."""

    name: str

    async def current_replicas_async(self) -> int: ...

    async def set_replicas_async(self, n: int) -> None: ...


def _check_count(n: int) -> None:
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"replicas must be a non-negative int, not {n!r}")




class LocalScaler:
    """``gamead worker`` processes on this machine, started and stopped through ``supervisor``."""

    name = "local"

    def __init__(
        self,
        supervisor: Supervisor,
        *,
        argv: Callable[[str], list[str]],
        env: dict[str, str],
        log_dir: Path,
        drain_timeout: float,
        id_tag: str = "",
    ) -> None:
        """``argv(worker_id)`` is the command line of one worker, asked again at each of its restarts; ``env``
        its environment; ``id_tag`` the stack's tag in its workers' ids (:mod:`.local_ids`, "": none)."""
        self.supervisor = supervisor
        self.id_tag = id_tag
        self._argv = argv
        self._env = dict(env)
        self._log_dir = log_dir
        self.stop_timeout = drain_timeout + STOP_GRACE
        self._workers: list[str] = []  # child names of the replicas, oldest first
        #: workers this process's own start asked (``gamead up --workers``, the first :meth:`set_replicas`), None
        #: before: a new stack's first tick finds them, not a call of a previous leader (attack32b F5)
        self.started: int | None = None
        self._leaving: dict[str, Supervisor] = {}  # child name → its own supervisor while it drains
        self._drains: set[asyncio.Task[None]] = set()
        self._reaped: dict[str, int] = {}  # child name → pid of its last process seen dead (--after-pid)
        #: (child name, pid, seen up) of dead workers, not yet recovered
        self._exits: list[tuple[str, int, bool]] = []
        self._recover: Callable[[str, int, bool], Awaitable[object]] | None = None
        self._recoveries: set[asyncio.Task[object]] = set()
        self._chained_exit = supervisor.on_exit  # keep the owner's hook (e.g. gamead up's log line)
        #: ``unhealthy(child name)``: is this worker not known to be serving (e.g. its heartbeat is silent,
        #: :meth:`gamead_core.scaling.probe.HeartbeatProbe.unhealthy`)? A scale-down stops those first.
        self.unhealthy: Callable[[str], bool] | None = None
        #: called when what its supervisor has due changed outside :meth:`poll` (a worker started, a restart
        #: brought forward): ``gamead up`` polls again then (:class:`gamead_core.child_exits.ChildExits`)
        self.on_change: Callable[[], None] | None = None
        supervisor.on_exit = self._worker_exited

    def __repr__(self) -> str:
        return f"LocalScaler({len(self._workers)} worker(s), {len(self._leaving)} draining)"

    # --- reading ----------------------------------------------------------------------------------------

    def current_replicas(self) -> int:
        """Workers that count: started (or waiting to be restarted) and not being stopped."""
        return len(self._workers)

    @property
    def draining(self) -> int:
        """Workers stopped by a scale-down that are still finishing their in-flight ads."""
        return len(self._leaving)

    @property
    def worker_names(self) -> list[str]:
        return list(self._workers)

    def pids(self) -> dict[str, int | None]:
        """Worker name → pid of every current replica."""
        return {n: self.supervisor.children[n].pid for n in self._workers if n in self.supervisor.children}

    # --- changing ---------------------------------------------------------------------------------------

    def worker_id(self, name: str) -> str:
        """The worker id of child ``name`` (``worker-3`` → ``local-3``, or ``local-3-<tag>``: :mod:`.local_ids`)."""
        return worker_id_of(name, self.id_tag)

    def _free_index(self) -> int:
        taken = {int(n.rsplit("-", 1)[1]) for n in [*self._workers, *self._leaving]}
        k = 1
        while k in taken:
            k += 1
        return k

    def _start_one(self) -> str:
        k = self._free_index()
        name = f"worker-{k}"
        worker_id = self.worker_id(name)
        self._reaped.pop(name, None)
        self.supervisor.start(name, lambda: self._restart_argv(name, worker_id), self._env,
                              self._log_dir / f"{name}.log")
        self._workers.append(name)
        log.info("started %s (%s)", name, worker_id)
        self._changed()
        return name

    def _restart_argv(self, name: str, worker_id: str) -> list[str]:
        """Child ``name``'s command line; after its process died, with ``--after-pid`` of that process: this
        supervisor reaped it, so its restart takes its registry entry over at once, not after the claim's watch
        (:func:`gamead_core.registry.claim.reaped`, attack44c F2: 3 s by default, 21 s with a 20 s heartbeat)."""
        dead = self._reaped.get(name)
        return [*self._argv(worker_id), *(["--after-pid", str(dead)] if dead is not None else [])]

    def _healthy(self, name: str) -> bool:
        child = self.supervisor.children.get(name)
        if child is None or not child.alive:
            return False  # dead, awaiting its restart
        if self.unhealthy is None:
            return True
        try:
            return not self.unhealthy(name)
        except Exception:  # a failing hook is logged; the worker counts as healthy
            log.exception("unhealthy hook failed for %s", name)
            return True

    def to_stop(self, count: int, entries: Iterable[NodeInfo] | None = None) -> list[Stop]:
        """The ``count`` workers a scale-down stops, in order (:func:`.local_stops.to_stop`): unhealthy ones first,
        then by their registry ``entries`` (None: unread) the quiet, then the idlest, the newest among equals."""
        running = []
        for name in self._workers:
            child = self.supervisor.children.get(name)
            running.append(Running(name, self.worker_id(name), child.pid if child is not None else None,
                                   self._healthy(name)))
        return to_stop(running, count, entries)

    def _detach(self, stops: list[Stop]) -> Supervisor:
        """Move the workers of ``stops`` out of the shared supervisor into a supervisor of their own."""
        leaving = Supervisor(on_event=self.supervisor.on_event)
        for name in [s.name for s in stops]:
            child = self.supervisor.children.pop(name)
            child.retired = True  # nobody restarts it
            leaving.children[name] = child
            self._leaving[name] = leaving
            self._workers.remove(name)
        return leaving

    def _stopped(self, names: list[str]) -> None:
        for name in names:
            self._leaving.pop(name, None)

    def _start_or_detach(self, n: int, entries: Iterable[NodeInfo] | None) -> tuple[Supervisor | None, list[Stop]]:
        """Start workers until ``n`` run; or detach those beyond ``n`` (:meth:`to_stop`: returned with their
        supervisor, still to be stopped)."""
        _check_count(n)
        while len(self._workers) < n:
            self._start_one()
        if len(self._workers) > n:
            stops = self.to_stop(len(self._workers) - n, entries)
            return self._detach(stops), stops
        return None, []

    def set_replicas(self, n: int) -> None:
        """Start or stop workers until ``n`` remain. Blocking variant (stops and waits in this thread)."""
        self.started = n if self.started is None else self.started
        leaving, _ = self._start_or_detach(n, None)
        if leaving is not None:
            names = list(leaving.children)
            try:
                leaving.stop_many(names, self.stop_timeout)
            finally:
                self._stopped(names)

    async def set_replicas_async(self, n: int, entries: Iterable[NodeInfo] | None = None) -> list[Stop]:
        """Start workers now, or SIGTERM those :meth:`to_stop` picks by ``entries`` (the registry's, None: unread)
        and let them drain in the background. Returns the workers it stops, in order (none: [])."""
        leaving, stops = self._start_or_detach(n, entries)
        if leaving is not None:
            names = list(leaving.children)
            log.info("stopping %s (draining up to %.0fs)", ", ".join(f"{s.name} ({s.worker}, {s.why})" for s in stops),
                     self.stop_timeout)
            task = asyncio.create_task(self._drain(leaving, names), name=f"gamead-drain-{'+'.join(names)}")
            self._drains.add(task)
            task.add_done_callback(self._drains.discard)
        return stops

    async def _drain(self, leaving: Supervisor, names: list[str]) -> None:
        try:
            # stop_many sends SIGTERM once (a second one would cut the worker's drain short), then waits.
            await asyncio.shield(asyncio.to_thread(leaving.stop_many, names, self.stop_timeout))
        except Exception:  # noqa: BLE001 - a failed stop is logged; the next scale-down tries the rest
            log.exception("stopping %s failed", ", ".join(names))
        finally:
            self._stopped(names)

    async def current_replicas_async(self) -> int:
        return self.current_replicas()

    def poll(self) -> None:
        """Restart dead children (the supervisor's back-off), and start the recovery of what dead workers
        held (see :meth:`attach_recovery`). Call periodically from the event loop's thread."""
        self.supervisor.poll()
        if self._recover is None:  # kept until one is attached: gamead up attaches it once its supervisor's NATS
            return  # connection is up, and a worker killed before (at load 40) was never recovered by it (flakes52C)
        exits, self._exits = self._exits, []
        for name, pid, registered in exits:
            task = asyncio.get_running_loop().create_task(self._recover(self.worker_id(name), pid, registered))
            self._recoveries.add(task)
            task.add_done_callback(self._recoveries.discard)
            task.add_done_callback(partial(self._recovered, name, pid))

    def _recovered(self, name: str, pid: int, task: asyncio.Task[object]) -> None:
        """What the recovery of worker ``name``'s process ``pid`` found tells its restart (chaos48 F4): progress
        (ads completed since its start) or a charge of the one ad it ran alone is no crash loop
        (:meth:`Supervisor.death_read`). A recovery that failed or found no entry of it: the death counts."""
        report = None if task.cancelled() or task.exception() is not None else task.result()
        completed, lone = getattr(report, "completed", None), getattr(report, "lone_charged", None)
        if isinstance(completed, int) and isinstance(lone, bool):
            self.supervisor.death_read(name, pid, completed, lone)
            self._changed()

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    def attach_recovery(self, recover: Callable[[str, int, bool], Awaitable[object]]) -> None:
        """When a worker dies, :meth:`poll` runs ``recover(worker_id, pid, registered)`` in the event loop at once
        (``registered``: its process was seen serving, :meth:`Supervisor.seen_up`), e.g.
        ``functools.partial(gamead_core.worker.reaper.recover_exited, nc, js, settings)``: its held ads go to
        the other workers within a poll period instead of when its heartbeat expires (``registry.ttl``), and
        a crash that was its only running analysis is charged to that ad. Without it, the worker's next
        incarnation (within the ttl) or the reaper still do it. Errors of ``recover`` are its own to log."""
        self._recover = recover

    def _worker_exited(self, child: Any, code: int) -> None:
        if self._chained_exit is not None:
            self._chained_exit(child, code)
        name, pid = getattr(child, "name", ""), getattr(child, "pid", None)
        if name in self._workers and pid is not None:
            self._reaped[name] = pid
            # seen serving (its first registry heartbeat, Supervisor.seen_up) or not: one refused at its start
            # registered nothing, and its recovery must not say it died holding deliveries (attack28c F3)
            self._exits.append((name, pid, bool(getattr(child, "up", True))))

    async def wait_drained(self) -> None:
        """Wait for every background stop to finish (bounded by ``stop_timeout``)."""
        while self._drains:
            await asyncio.gather(*list(self._drains), return_exceptions=True)

    async def close(self) -> None:
        """Stop every worker (they drain, in parallel with any scale-down still draining) and wait."""
        await self.set_replicas_async(0)
        await self.wait_drained()


class NoneScaler:
    """The ``none`` backend: never changes anything; reports the count it was last told."""

    name = "none"

    def __init__(self, current: int = 0) -> None:
        self.current = current

    def tell(self, current: int) -> None:
        """What the replica count is (e.g. live workers in the registry)."""
        self.current = max(0, current)

    def current_replicas(self) -> int:
        return self.current

    def set_replicas(self, n: int) -> None:
        _check_count(n)

    async def current_replicas_async(self) -> int:
        return self.current

    async def set_replicas_async(self, n: int) -> None:
        _check_count(n)


__all__ = ["LocalScaler", "NoneScaler", "STOP_GRACE", "Scaler"]
