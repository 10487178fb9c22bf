"""``gamead up`` running: restart dead children, recover a dead worker's ads, run the autoscaler, the probe, the
nats-server's watch and the API's readiness watch until a stop signal; then drain the workers."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, TypeVar

from gamead_cli import first_signals
from gamead_cli.commands.up_console import OtherLeader, say, show_decision
from gamead_cli.commands.up_link import UpLink
from gamead_cli.commands.up_liveness import start_probe, watch_api_ready, watch_nats
from gamead_cli.commands.up_logs import refused_start
from gamead_cli.commands.up_signals import hurries, hurry_words, install_stop_handlers, request_stop, stop_requested
from gamead_cli.commands.up_stack import UpStack
from gamead_core.child_exits import ChildExits, next_due, running_pids
from gamead_core.config import GameadSettings
from gamead_core.errors import ConfigError, GameadError
from gamead_core.log_growth import LogGrowth
from gamead_core.metrics_ports import WorkerMetricsPorts
from gamead_core.scaling.stacks import stack_id
from gamead_core.shutdown import close_for_good
from gamead_core.stop_bound import given_up, within
from gamead_core.supervisor import Child, Supervisor

T = TypeVar("T")


async def supervising(connecting: Awaitable[T], poll: Callable[[], None] | None, stop: asyncio.Event,
                      every: float = 0.2) -> T | None:
    """Await ``connecting`` (the supervisor's NATS connection) while still supervising: ``poll()`` (restart dead
    children) every ``every`` s (None: no poll and no clock, a connect again while :func:`keep_children` runs),
    and give up (cancel it, return None) once ``stop`` is set. nats-py's connect with ``allow_reconnect`` and no
    attempt limit tries for ever while the server is down: if the embedded nats-server died just before, the loop
    that restarts it never ran and Ctrl-C only said "stopping now", for ever (found so when a test run was
    stopped, its nats-server killed just before a stack's supervisor connected). Raises what ``connecting``
    raises."""
    task = asyncio.ensure_future(connecting)
    stopping = asyncio.ensure_future(stop.wait())
    try:
        while not task.done():
            if stop.is_set():
                await given_up(task, close_for_good, "the connection")  # a late client closed; bounded
                return None
            if poll is not None:
                poll()
            await asyncio.wait({task, stopping}, timeout=every if poll is not None else None,
                               return_when=asyncio.FIRST_COMPLETED)
        return task.result()
    finally:
        stopping.cancel()


async def keep_children(sup: Supervisor, poll: Callable[[], None], stop: asyncio.Event, exits: ChildExits,
                        retry_at: Callable[[], float | None] = lambda: None) -> list[Child]:
    """Until ``stop`` is set, ``poll()`` (restart dead children with back-off: :meth:`Supervisor.poll`) when a
    child of ``sup`` ends (the kernel's word: ``exits``, or :meth:`ChildExits.poke`), when ``sup`` has something
    due (:func:`~gamead_core.child_exits.next_due`), a second after the last look at the logs' sizes once one grew
    (the kernel's word again: :class:`~gamead_core.log_growth.LogGrowth`) or at ``retry_at()`` (monotonic s, None:
    never; a rewrite of ``gamead-up.json`` to retry); never on a clock between (idle56: it looked every 0.2 s).
    Returns ``sup``'s refused children (a configuration refusal: restarting cannot help) as soon as there are, else
    [] once ``stop`` is set."""
    logs = LogGrowth(exits.poke)
    try:
        while not stop.is_set():
            logs.watch(c.log_path for c in sup.children.values())
            looked = sup.logs_checked_at
            poll()
            if refused := sup.refused:
                return refused
            if sup.logs_checked_at != looked:
                logs.looked()
            exits.watch(running_pids(sup))
            await exits.wait(stop, next_due(sup, retry_at(), logs.due(sup.logs_checked_at)))
        return []
    finally:
        logs.close()


async def supervise(settings: GameadSettings, scaling: Any, nats_url: str, scaler: Any, stack: UpStack,
                     autoscaling: bool, *, recovery: bool, metrics: WorkerMetricsPorts | None = None,
                     nats_health: Callable[[], str] | None = None, drift: Any = None, beats: Any = None) -> None:
    """Restart dead children and run the autoscaler until a stop signal; then drain the workers. ``recovery``:
    recover what a dead worker held at once (on a NATS connection of its own), autoscaler or not. ``nats_health``:
    the embedded nats-server's ``/healthz`` (None: NATS is not ours), watched from the start (:func:`watch_nats`).
    ``drift``: what the start said of the settings not in force (:class:`.up_drift.DriftNote`), said again as the
    API's ``/readyz`` changes it. ``beats``: the start's :func:`.up_ready.heartbeat_probe`, which the liveness
    probe goes on with (None: a new one)."""
    import nats
    import nats.errors

    from gamead_core.scaling.loop import Autoscaler, AutoscalerDeps, new_holder_id

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    seen = {"signals": 0}

    def on_signal(signum: int) -> None:
        first_signals.take(signum)  # the stop acted on, if the first (up_signals.after_stop)
        seen["signals"] += hurries(signum)  # SIGHUP never: a closed terminal's comes beside a SIGTERM
        stop_requested.set()  # a stop has begun: the parent watch's SIGTERM must not hurry it (up._parent_gone)
        if seen["signals"] <= 1:
            stop.set()
        else:
            stack.hurry_workers()

    def from_signal(signum: int, _frame: object) -> None:  # a plain handler (not the loop's): the hand-over below
        loop.call_soon_threadsafe(on_signal, signum)  # replaces it at once, never through the default action

    install_stop_handlers(from_signal)
    if stop_requested.is_set():  # it came before the handlers above: stop now, as the signal that asked it (a
        on_signal(first_signals.STOPPED["signal"] or signal.SIGINT)  # SIGHUP's counted as SIGTERM's: hurried by one)
    link = UpLink(settings, nats_url)
    refusal: ConfigError | None = None
    kept: asyncio.Task[None] | None = None
    watch = watch_nats(settings, stack, nats_health, stop) if nats_health else None
    ready_watch = watch_api_ready(settings, stack, stop, nats_ours=nats_health is not None,  # attack29b F1
                                  also=drift.observe_reading if drift is not None else None)  # attack32c F1
    # each with its own deadline (gamead_core.stop_bound.within): a reading hung on a stalled NATS is cut
    step = settings.nats.request_timeout + 3
    try:
        if autoscaling or recovery:
            try:
                nc = await supervising(link.connecting(), scaler.poll, stop)
            except (OSError, nats.errors.Error, asyncio.TimeoutError) as exc:
                raise GameadError(f"gamead up cannot connect to NATS at {nats_url}: {exc}") from exc
            if nc is not None:
                link.use(nc)
        if link.nc is not None:
            # a worker that dies has its held ads handed to the others at once (gamead_core.worker.reaper),
            # with or without the autoscaler: else, with --no-autoscale, a death could go unrecovered until its
            # ads were redelivered after ack_wait, and charge an innocent ad (a reviewer's crash drill, issue I5)
            from gamead_core.worker.reaper import recover_exited

            scaler.attach_recovery(link.recovering(partial(recover_exited, settings=settings), stop))
            here = stack_id(settings.embedded.data_dir)  # written into the lease: whose workers it moves
            follow = OtherLeader(here)

            def on_link(ended: asyncio.Event) -> list[asyncio.Task[None]]:  # each connection's, again after a close
                tasks = [start_probe(settings, link.nc, link.js, scaler, ended, metrics, beats)]
                if autoscaling:
                    deps = AutoscalerDeps.standalone(settings, link, node_id=new_holder_id("up"), backend=scaler,
                                                     on_decision=show_decision, stack=here, on_follow=follow)
                    tasks.insert(0, asyncio.create_task(Autoscaler(scaling, deps).run(ended)))  # lease first
                return tasks

            kept = asyncio.create_task(link.keep(stop, on_link, step, lambda c: supervising(c, None, stop)))
        exits = ChildExits()
        scaler.on_change = exits.poke  # a worker the autoscaler started is watched at once
        try:  # restart dead children (workers, the API, nats-server) with back-off
            refused = await keep_children(stack.sup, scaler.poll, stop, exits, lambda: stack.data.retry_at)
        finally:
            scaler.on_change = None
            exits.close()
        if refused:  # a configuration refusal: restarting cannot help
            refusal = refused_start(refused[0])
            stop_requested.set()
            stop.set()
        stack.arm_stop()  # past its bound: every child left SIGKILLed and named, exit 1 (fix35d)
        hurry = hurry_words(seen["signals"])  # a SIGHUP-begun stop: twice (words56b F3)
        say(f"stopping: workers drain first (up to {settings.worker.drain_timeout:g}s; {hurry}; all of it "
            f"within {stack.stop_bound():g}s, SIGKILL past it) …")
        if kept is not None:  # the autoscaler's stop releases the lease (at most 2 s); draining workers are never
            await within(kept, 2 * step + 1, "the autoscaler's stop and the liveness probe's last reading")  # probed
        if watch is not None:
            await within(watch, step, "nats-server's watch")  # the stopping nats-server is never killed by it
        await within(ready_watch, step, "the API's readiness watch")  # a stopping API is never said unready
        await scaler.close()  # every worker drains (SIGKILL past drain_timeout + 5 s), with any scale-down
        if refusal is not None:
            raise refusal
    finally:
        if link.nc is not None:
            await close_for_good(link.nc, 5)  # its reconnect loop ended too (flakes51B)
        install_stop_handlers(request_stop)  # in one step: a late signal never meets the default action (leftovers56)
