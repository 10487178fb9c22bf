"""``gamead up``'s wait for the workers it started to register: their first registry heartbeat, written once
each has connected and made its consumers, before ``up`` says they run and prints its hints.

Before, ``up`` said "✓ 2 worker(s)" and "Press Ctrl-C to stop" right after spawning them: a first burst of ads
sent at once waited for the workers' start (submit→start p95 0.7-2.0 s, against 0.1-0.2 s for a second burst).
Each worker is waited for as the API's start is (:class:`~gamead_core.start_watch.StartWatch`): for as long as
its process makes progress, up to a cap; one that has not registered by then is named and ``up`` goes on
without it (it is still starting, and watched as every worker is once the stack runs). The registry is read
once per poll on one NATS connection; a worker's entry counts only if it is that process's own
(:class:`~gamead_core.scaling.probe.HeartbeatProbe`: never a dead predecessor's). A worker that refuses its
configuration (exit 5) meanwhile ends ``up`` with its message, as it did before.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from rich.markup import escape

from gamead_cli.commands.up_console import say
from gamead_cli.commands.up_logs import refused_start
from gamead_cli.commands.up_signals import check_stop
from gamead_cli.commands.up_stack import API_CHILD, UpStack
from gamead_cli.commands.up_start import API_STALL_AFTER, API_START_CAP, cpu_words, progress_words
from gamead_core.config import GameadSettings
from gamead_core.proc import cpu_sample
from gamead_core.redact import redact_url
from gamead_core.start_watch import StartWatch
from gamead_core.stop_bound import given_up

#: seconds between two reads of the registry while the workers start
POLL_EVERY = 0.2


def heartbeat_probe(settings: GameadSettings) -> Any:
    """The :class:`~gamead_core.scaling.probe.HeartbeatProbe` of ``gamead up``'s whole life: the start's wait for
    the workers observes them and the API with it, and the stack's liveness probe
    (:func:`.up_liveness.start_probe`) goes on with what it saw (flakes52C: a fresh one, begun 15-40 s after the
    workers registered at load 40, never saw a busy worker's beat, said it had written none since its start, and
    killed it blind)."""
    from gamead_core.scaling.probe import HeartbeatProbe

    return HeartbeatProbe(settings.registry.ttl, every=settings.registry.heartbeat_interval)


def wait_workers_registered(settings: GameadSettings, nats_url: str, stack: UpStack, scaler: Any, *,
                            stall_after: float = API_STALL_AFTER, cap: float = API_START_CAP,
                            note_after: float = 15.0, probe: Any = None,
                            registered: dict[str, int] | None = None) -> list[str]:
    """Wait until every worker of ``scaler`` (its children in ``stack``'s supervisor) has written its first
    registry heartbeat on the NATS at ``nats_url``, each for as long as its process makes progress: a worker
    not registered after ``stall_after`` s without progress (CPU time unchanged, not waiting for a CPU or a disk)
    or ``cap`` s in all is named on the console and no longer waited for; one still starting after
    ``note_after`` s is said once. A registered worker's start is over (:meth:`~gamead_core.supervisor.
    Supervisor.seen_up`). Returns the names of the workers not registered. Raises :class:`StopRequested` on a
    stop signal, and the child's own :class:`~gamead_core.errors.ConfigError` (exit 5) if one refused its
    configuration. NATS not reached within ``stall_after`` s is said and not waited for. ``probe``: the
    :func:`heartbeat_probe` that observes every worker's beats (a new one if None); ``registered``, if given, is
    filled with name → pid of each worker as the process seen registered (for :func:`worker_line`'s ``fallen``)."""
    return asyncio.run(_wait(settings, nats_url, stack, scaler,
                             partial(StartWatch, stall_after=stall_after, cap=cap, note_after=note_after),
                             heartbeat_probe(settings) if probe is None else probe,
                             {} if registered is None else registered))


async def _wait(settings: GameadSettings, nats_url: str, stack: UpStack, scaler: Any,
                new_watch: Callable[[float], StartWatch], probe: Any, registered: dict[str, int]) -> list[str]:
    import nats

    from gamead_core.queue.connection import connect_options
    from gamead_core.registry import Registry
    from gamead_core.scaling.probe import Watched, api_key
    from gamead_core.shutdown import close_for_good

    pending, given_up = list(scaler.worker_names), []
    watches: dict[str, tuple[int | None, StartWatch]] = {}
    host = socket.gethostname()  # as this machine's workers announce it in their entries
    async def quiet(exc: Exception) -> None:  # nats-py's errors: what matters is said by the wait itself
        pass

    connect = asyncio.ensure_future(nats.connect(**connect_options(settings.nats, nats_url, name="gamead-up start"),
                                                 error_cb=quiet))
    begun = time.monotonic()
    nc = None
    try:
        while nc is None:
            _poll(stack)
            await asyncio.wait({connect}, timeout=POLL_EVERY)
            try:
                nc = connect.result() if connect.done() else None
            except Exception as exc:  # noqa: BLE001 - said below; the stack runs on, its probe reads the registry
                why = f"{type(exc).__name__}: {exc}"
            else:
                why = f"no connection after {time.monotonic() - begun:.0f}s"
                if nc is None and time.monotonic() - begun < new_watch(begun).stall_after:
                    continue
            if nc is None:
                say(f"[yellow]![/] gamead up cannot reach NATS at {escape(redact_url(nats_url))} to see its workers "
                    f"register ({escape(why)}): going on without waiting for them")
                return pending
        registry = Registry(nc, nc.jetstream(timeout=settings.nats.request_timeout), settings.registry,
                            replicas=settings.queue.replicas, timeout=settings.nats.request_timeout)
        while pending:
            _poll(stack)
            now = time.monotonic()
            pending = [name for name in pending if name in stack.sup.children]  # one stopped is not waited for
            for name in pending:
                child = stack.sup.children[name]
                if name not in watches or watches[name][0] != child.pid:  # a restart is watched from its own start
                    watches[name] = (child.pid, new_watch(child.started_at))
            watched = [Watched(name, api_key(child.pid, host) if name == API_CHILD else scaler.worker_id(name),
                               child.pid, child.started_at, child.started_wall)
                       for name in [*scaler.worker_names, API_CHILD]  # registered ones and the API too: the probe
                       if (child := stack.sup.children.get(name)) is not None and child.alive  # keeps their beats
                       and child.pid is not None]
            try:
                entries = {n.id if n.role == "worker" else api_key(n.pid, n.host): n for n in await registry.list()
                           if n.role in ("worker", "api") and n.host == host}
            except Exception:  # noqa: BLE001 - not read this time: the workers' watches bound the wait
                probe.blind()
            else:
                probe.observe(watched, entries, now)
            for w in watched:
                if w.name in pending and probe.beaten(w.name, w.pid):
                    stack.sup.seen_up(w.name, w.pid)  # serving: a refusal of it from now on is retried
                    registered[w.name] = w.pid
                    pending.remove(w.name)
            for name in list(pending):
                child = stack.sup.children.get(name)
                pid, watch = watches[name]
                verdict = watch.observe(now, cpu_sample(pid) if pid is not None and child and child.alive else None)
                if verdict != "wait":
                    pending.remove(name)
                    given_up.append(name)
                    say(_given_up(name, pid, watch, verdict, now))
                elif watch.note_due(now):
                    say(f"[yellow]![/] {escape(name)} (pid {pid}) has not registered after "
                        f"{now - watch.started:.0f}s ({cpu_words(watch)}): a loaded machine makes its start slow; "
                        f"waiting while its process makes progress, up to {watch.cap:g}s, or until "
                        f"{watch.stall_after:g}s pass without any")
            if pending:
                await asyncio.sleep(POLL_EVERY)
        return given_up
    finally:
        if nc is not None:
            await close_for_good(nc, 5)  # its reconnect loop ended too (flakes51B)
        else:
            await given_up(connect, close_for_good, "the connection")  # a late client closed; bounded


def worker_line(pids: dict[str, int | None], starting: list[str], slots: int,
                fallen: dict[str, int] | None = None) -> str:
    """The console line of the workers ``up`` started (``pids``: name → pid now; ``starting``: those not registered;
    ``slots``: ``worker.concurrency``; ``fallen``: name → pid of a registered worker whose process has died since,
    its pid now in ``pids`` a restart's or the dead one), e.g. ``2 worker(s) registered (pid 11, 12), 4 slot(s)
    each`` or ``1 of 2 worker(s) registered (pid 11), 4 slot(s) each; still starting: worker-2 (pid 12)``; with
    ``fallen``: ``…; since died: worker-2 (pid 12; restarted as pid 15)``: a pid said registered is never one that
    died before the line (attack52 F4: a poison ad's crash loop). Pure."""
    fallen = fallen or {}
    ready = [str(fallen.get(name, pid)) for name, pid in pids.items() if name not in starting]
    count = f"{len(ready)} of {len(pids)}" if starting else f"{len(pids)}"
    pids_said = f" (pid {', '.join(ready)})" if ready else ""
    line = f"{count} worker(s) registered{pids_said}, {slots} slot(s) each"
    if starting:
        line += "; still starting: " + ", ".join(f"{name} (pid {pids.get(name)})" for name in starting)
    if fallen:
        line += "; since died: " + ", ".join(
            f"{name} (pid {pid}; " + ("restarting)" if pids.get(name) == pid else
                                      f"restarted as pid {pids[name]})") for name, pid in fallen.items())
    return line


def died_since(registered: dict[str, int], pids: dict[str, int | None], alive: Callable[[str], bool]) -> dict[str, int]:
    """The workers among ``registered`` (name → the pid seen register) whose process has died since: another pid
    now in ``pids`` (a restart), or the same one no longer ``alive(name)``; name → the registered pid, for
    :func:`worker_line`'s ``fallen``. A worker no longer in ``pids`` (stopped on purpose) is left out. Pure."""
    return {name: pid for name, pid in registered.items()
            if name in pids and (pids[name] != pid or not alive(name))}


def _poll(stack: UpStack) -> None:
    """Restart a worker that died (the supervisor's back-off; what it held is recovered once ``up`` runs); end
    ``up`` with the child's message if one refused its configuration (exit 5); stop on a stop signal."""
    check_stop()
    stack.sup.poll()
    if refused := stack.sup.refused:
        raise refused_start(refused[0])


def _given_up(name: str, pid: int | None, watch: StartWatch, verdict: str, now: float) -> str:
    """The console line of a worker no longer waited for (``verdict``: ``stalled`` or ``cap``)."""
    why = progress_words(watch, verdict, now)
    return (f"[yellow]![/] {escape(name)} (pid {pid}) has not registered after {now - watch.started:.0f}s ({why}): "
            "going on without waiting for it; it is still starting, and is restarted if it dies or stays silent "
            "(its registry heartbeat)")


__all__ = ["POLL_EVERY", "died_since", "heartbeat_probe", "wait_workers_registered", "worker_line"]
