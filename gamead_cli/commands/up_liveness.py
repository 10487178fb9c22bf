"""The liveness of ``gamead up``'s children: the probe of the workers and the API (a silent registry heartbeat),
the watch of the embedded nats-server (its ``/healthz``, on a monitoring port that may move at a restart), and
what the console says of a silent child."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable
from typing import Any

from rich.markup import escape

from gamead_cli.commands.up_console import say
from gamead_cli.commands.up_stack import API_CHILD, NATS_CHILD, UpStack
from gamead_core.config import GameadSettings
from gamead_core.metrics_ports import WorkerMetricsPorts


def start_probe(settings: GameadSettings, nc: Any, js: Any, scaler: Any, stop: asyncio.Event,
                 metrics: WorkerMetricsPorts | None = None, seen: Any = None) -> asyncio.Task[None]:
    """The liveness probe of the local workers and the API (:mod:`gamead_core.scaling.probe`): a child whose
    registry heartbeat is silent for ``registry.ttl`` is asked whether it is alive (the API on its ``/healthz``, a
    worker on its ``/metrics`` from ``metrics``; :mod:`gamead_core.scaling.answers`). One that answers is left
    running, and the console says once that it is alive but cannot write its heartbeat (with its log's heartbeat
    error), and once when its heartbeat is back. One that does not answer is judged on its process (stopped, idle,
    busy, wedged: :func:`~gamead_core.scaling.probe.judge`) and, if so judged, named on the console and SIGKILLed,
    so that the supervisor restarts it (and its held ads are recovered as for any dead worker); a scale-down stops
    such workers first. A child's first heartbeat ends its start (:meth:`~gamead_core.supervisor.Supervisor.
    seen_up`): an exit 5 after it is retried, never the end of the stack. ``seen``: the start's
    :class:`~gamead_core.scaling.probe.HeartbeatProbe` (:func:`.up_ready.heartbeat_probe`), whose sightings of
    the workers' beats it goes on with (None: a new one)."""
    import socket

    from gamead_core.registry import Registry
    from gamead_core.scaling.answers import Answer, ask, heartbeat_error, liveness_client
    from gamead_cli.commands.up_ready import heartbeat_probe
    from gamead_core.scaling.probe import (
        Silent,
        Verdict,
        Watched,
        api_key,
        run_probe,
    )

    registry = Registry(nc, js, settings.registry, replicas=settings.queue.replicas,
                        timeout=settings.nats.request_timeout)
    probe = seen if seen is not None else heartbeat_probe(settings)
    host = socket.gethostname()  # as this machine's children announce it in their entries
    def unhealthy(name: str) -> bool:
        child = scaler.supervisor.children.get(name)
        return probe.unhealthy(name, child.pid if child is not None else None, time.monotonic())

    scaler.unhealthy = unhealthy

    def watched() -> list[Watched]:
        out = []
        for name in [*scaler.worker_names, API_CHILD]:  # the API is matched by host and pid (probe.api_key)
            child = scaler.supervisor.children.get(name)
            if child is not None and child.alive and child.pid is not None:
                key = api_key(child.pid, host) if name == API_CHILD else scaler.worker_id(name)
                out.append(Watched(name, key, child.pid, child.started_at, child.started_wall))
        for pid in [p for p in [*told, *answered] if p not in {w.pid for w in out}]:
            told.pop(pid, None)  # gone (killed, restarted, stopped)
            answered.pop(pid, None)
        return out

    told: dict[int, set[str]] = {}  # pid left running while silent → the verdicts already said of it
    answered: dict[int, int] = {}  # pid silent → readings in a row at which it answered its liveness endpoint

    def replace(silent: Silent, verdict: Verdict) -> None:
        child = scaler.supervisor.children.get(silent.name)
        if child is None or child.pid != silent.pid or not child.alive:
            return  # replaced, stopped or dead meanwhile
        if not verdict.kill:
            streak = answered[silent.pid] = answered.get(silent.pid, 0) + 1 if verdict.why == "answering" else 0
            if streak == 1:  # a loop blocked for a while answers first and beats at the next reading: wait for it
                return
            if verdict.why not in told.setdefault(silent.pid, set()):
                told[silent.pid].add(verdict.why)
                error = (heartbeat_error(child.log_path, time.time() - (silent.real or silent.silent_for))
                         if verdict.why == "answering" else None)
                say(silent_line(silent, verdict, settings.registry.ttl, error))
            return
        told.pop(silent.pid, None)
        answered.pop(silent.pid, None)
        say(silent_line(silent, verdict, settings.registry.ttl, every=probe.every))
        try:
            os.kill(silent.pid, signal.SIGKILL)  # a stopped process (SIGSTOP) dies by nothing else
        except ProcessLookupError:
            pass

    def back(worker: Watched, silent_for: float) -> None:
        answered.pop(worker.pid, None)
        said = told.pop(worker.pid, set())
        if not said:
            return  # nothing was said of its silence
        if said == {"answering"}:
            say(f"[green]✓[/] {escape(worker.name)} (pid {worker.pid}) writes its registry heartbeat again, after "
                f"{silent_for:.1f}s of silence (alive all along); left running")
            return
        say(f"[green]✓[/] {escape(worker.name)} (pid {worker.pid}) renewed its registry heartbeat again after "
            f"{silent_for:.1f}s of silence: it was busy, not hung; left running")

    async def probing() -> None:
        async with liveness_client() as client:  # one for the probe's life, closed when it stops (review27 F4)
            async def check(worker: Watched) -> Answer | None:
                if worker.name == API_CHILD:
                    return await ask(client, f"http://127.0.0.1:{settings.api.port}/healthz")
                url = metrics.local_url(worker.worker_id) if metrics is not None else None
                return await ask(client, url) if url is not None else None  # no /metrics: its process alone

            # a child that beat is serving: its start is over, a refusal (exit 5) of it now never ends the stack
            await run_probe(probe, registry.list, watched, replace, stop, settings.registry.heartbeat_interval,
                            on_back=back, check=check, host=host, on_late=lambda s: say(late_line(s, probe)),
                            on_beat=lambda w: scaler.supervisor.seen_up(w.name, w.pid))

    return asyncio.create_task(probing(), name="gamead-up-probe")


def health_url(embedded: Any) -> str:
    """The embedded nats-server's ``/healthz`` now (its monitoring port may move at a restart: :func:`nats_argv`)."""
    return f"http://127.0.0.1:{embedded.monitor_port}/healthz?js-enabled-only=true"


#: what the claim of the embedded nats-server's monitoring port says it is for (:mod:`gamead_core.port_claims`)
MONITOR_PURPOSE = "its embedded nats-server's /healthz"


def monitor_port(configured: int, claims: Any) -> int:
    """The embedded nats-server's monitoring port at ``gamead up``'s start: ``embedded.nats_monitor_port`` claimed
    for this stack (another running stack's reserved port: :class:`gamead_core.port_claims.PortReserved`, exit 5),
    or with 0 :data:`~gamead_core.embedded.ANY_PORT`: a free one picked and claimed at the start
    (:func:`.up_nats.start_nats`; newcomer35 F1: it could not be chosen). A port some other process holds moves
    to a free one at the start, said on the console (:func:`nats_argv`)."""
    from gamead_core.embedded import ANY_PORT

    if not configured:
        return ANY_PORT
    claims.require(configured, MONITOR_PURPOSE, "the embedded nats-server's monitoring",
                   "set embedded.nats_monitor_port to another port (0 = any free port)")
    return configured


def nats_argv(embedded: Any, claims: Any) -> list[str]:
    """The embedded nats-server's argv for a (re)start, its config written again: a monitoring port another
    process took meanwhile moves to a free one, said on the console (nats-server exits at once when it cannot
    listen there, and the data plane must never stay down for a liveness probe's port: attack27b F7)."""
    from gamead_core.proc import port_free

    if embedded.monitor_port and not port_free("127.0.0.1", embedded.monitor_port):
        move_monitor(embedded, claims.pick, claims.release)
    return embedded.write_argv()


def move_monitor(embedded: Any, pick: Callable[[str, str], int], release: Callable[[int], None]) -> None:
    """Move the embedded nats-server's monitoring port, taken by another process, to a free one (``pick(host,
    purpose)``, claimed; the taken one given back with ``release(port)``), said on the console."""
    taken = embedded.monitor_port
    embedded.monitor_port = pick("127.0.0.1", MONITOR_PURPOSE)
    release(taken)
    say(f"[yellow]![/] the nats-server's monitoring port {taken} is taken by another process: its /healthz "
        f"moves to http://127.0.0.1:{embedded.monitor_port}/healthz")


def watch_nats(settings: GameadSettings, stack: UpStack, url: Callable[[], str],
                stop: asyncio.Event) -> asyncio.Task[None]:
    """The liveness watch of the embedded nats-server (:mod:`gamead_core.scaling.nats_watch`): one that does not
    answer ``url()`` (its ``/healthz``, which may move at a restart) for ``registry.ttl`` is named on the console with its PID and state and, if
    frozen or hung, SIGKILLed, so that the supervisor restarts it as after a crash; one busy is said and waited for."""
    from gamead_core.scaling.nats_watch import NatsWatch, Note, run_nats_watch

    def target() -> tuple[int, float] | None:
        child = stack.sup.children.get(NATS_CHILD)
        if child is None or child.retired or not child.alive or child.pid is None:
            return None
        return child.pid, child.started_at

    def tell(note: Note) -> None:
        say(f"[green]✓[/] {escape(note.text)}" if note.good else f"[yellow]![/] {escape(note.text)}")

    def kill(pid: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)  # a stopped process (SIGSTOP) dies by nothing else

    watch = NatsWatch(settings.registry.ttl, begun=time.monotonic())  # the start before saw it listen
    return asyncio.create_task(run_nats_watch(watch, target, url, tell, kill, stop), name="gamead-up-nats-watch")


def watch_api_ready(settings: GameadSettings, stack: UpStack, stop: asyncio.Event,
                    nats_ours: bool, also: Callable[[Any], Any] | None = None) -> asyncio.Task[None]:
    """The readiness watch of the API (:mod:`gamead_core.scaling.ready_watch`): its ``/readyz`` unready for more
    than ``registry.ttl`` is said once on the console, naming the failing checks (for storage, what to do: on
    ``nats_ours``, the embedded nats-server's store dir and PID), and once when it is ready again; and each note
    ``also`` makes of a reading (the settings not in force: :meth:`.up_drift.DriftNote.observe_reading`). On
    ``nats_ours``, a full disk freed again has nats-server restarted (:mod:`.up_disk`, attack41a F1); a Redis the
    API cannot use is said too, and spans its exporter cannot send (:mod:`.up_soft`, attack41a F4, attack45 F6)."""
    from pathlib import Path

    from gamead_cli.commands.up_soft import redis_note, tracing_note
    from gamead_core.telemetry.tracing import export_targets, wanted
    from gamead_core.scaling.ready_watch import ReadyWatch, run_ready_watch

    def who() -> str | None:
        child = stack.sup.children.get(API_CHILD)
        return None if child is None or not child.alive or child.pid is None else f"the API (pid {child.pid})"

    def restart() -> str:
        child = stack.sup.children.get(NATS_CHILD)
        if not nats_ours or child is None or child.pid is None:
            return "restart nats-server"
        return (f"restart nats-server (gamead up does so itself once the disk has room again, attack41a F1; or "
                f"kill {child.pid}: gamead up starts it again)")

    def tell(note: Any) -> None:
        say(f"[green]✓[/] {escape(note.text)}" if note.good else f"[yellow]![/] {escape(note.text)}")

    def nats_restart() -> tuple[float, str] | None:  # the embedded nats-server's last death or restart
        child = stack.sup.children.get(NATS_CHILD)
        if not nats_ours or child is None or child.pid is None:
            return None
        if not child.alive:  # killed (frozen) or dead: the restart is under way (regress39 F7: said in that gap)
            return time.monotonic(), f"nats-server (pid {child.pid}) has stopped and gamead up is restarting it"
        if not child.restarts:
            return None
        return child.started_at, f"nats-server was restarted {time.monotonic() - child.started_at:.1f}s ago " \
                                 f"(pid {child.pid})"

    store = str(Path(settings.embedded.data_dir) / "jetstream") if nats_ours else None
    from gamead_cli.commands.up_disk import disk_mend, store_cause

    cause = store_cause(stack, Path(store)) if store is not None else (lambda: None)  # ulimit -f: attack43a F1
    watch = ReadyWatch(settings.registry.ttl, store, restart, nats_restart, cause)
    notes = [redis_note(settings.registry.ttl).observe]  # a Redis the API cannot use (attack41a F4)
    if wanted():  # the children trace (up's environment is theirs): spans the API cannot send (attack45 F6)
        notes.append(tracing_note(settings.registry.ttl, export_targets()).observe)
    if store is not None:  # a full disk, freed: nats-server restarted by gamead up itself (attack41a F1)
        notes.append(disk_mend(settings.registry.ttl, stack, Path(store)))
    drift = also

    def noted(reading: Any) -> Any:
        for note_of in notes:
            if (note := note_of(reading)) is not None:
                tell(note)
        return drift(reading) if drift is not None else None

    return asyncio.create_task(run_ready_watch(watch, f"http://127.0.0.1:{settings.api.port}/readyz", who, tell,
                                               stop, also=noted), name="gamead-up-ready-watch")


def late_line(silent: Any, probe: Any) -> str:
    """The console line of a child found silent past the bound at the first reading after ``gamead up`` itself was
    not run for a while (``silent``: a :class:`~gamead_core.scaling.probe.Silent` of the probe's ``late``; ``probe``:
    its :class:`~gamead_core.scaling.probe.HeartbeatProbe`): both figures, and the counted silence left before it
    is judged (attack32a F10). Pure."""
    from gamead_core.scaling.gaps import LATE, not_run_words

    bound = probe.ttl + (0.0 if silent.beat_before else probe.start_grace)
    what = "renewed its registry heartbeat" if silent.beat_before else "written a registry heartbeat since its start"
    return (f"[yellow]![/] {escape(silent.name)} (pid {silent.pid}) has not {what} for {silent.real:.1f}s, "
            f"{not_run_words(silent.gap, probe.every + LATE, probe.ttl)}: judged if its silence goes on about "
            f"{max(0.0, bound - silent.silent_for):.1f}s more; left running")


def silent_line(silent: Any, verdict: Any, ttl: float, error: str | None = None, every: float = 0.0) -> str:
    """The console line of a child silent past ``ttl`` (``registry.ttl``, s): alive (its liveness endpoint
    answered) but unable to write its heartbeat (``error``: its log's last heartbeat error, if known), killed
    (frozen, hung or wedged, and why) or left running (busy or starved of CPU), from the probe's
    :class:`~gamead_core.scaling.probe.Silent` and :class:`~gamead_core.scaling.probe.Verdict`. After a gap of the
    probe (``silent.real``), the real silence and the part counted (``every``: the probe's interval, s). Pure."""
    from gamead_core.scaling.gaps import LATE, counted_words
    from gamead_core.scaling.probe import BUSY_FACTOR

    real = silent.silent_for if silent.real is None else silent.real
    seen = counted_words(real, silent.silent_for, silent.gap, every + LATE)
    what = (f"has not renewed its registry heartbeat for {real:.1f}s{seen} (registry.ttl {ttl:g}s)"
            if silent.beat_before else
            f"has written no registry heartbeat in the {real:.1f}s since its start{seen}")
    who = f"{escape(silent.name)} (pid {silent.pid}) {what}"
    if verdict.why == "answering":
        why = f"its heartbeat failed: {escape(error)}" if error else "its log names no heartbeat error yet"
        quiet = (f"no registry heartbeat renewed for {silent.silent_for:.1f}s (registry.ttl {ttl:g}s)"
                 if silent.beat_before else f"no registry heartbeat in the {silent.silent_for:.1f}s since its start")
        return (f"[yellow]![/] {escape(silent.name)} (pid {silent.pid}) is alive but cannot write its heartbeat: "
                f"{quiet}, yet {escape(verdict.answer or 'it answered')}; {why}. Left running: fix what refuses "
                "its writes to the registry bucket (a JetStream store at its limit, its nats.max_pending_bytes; "
                "gamead doctor)")
    cpu = verdict.cpu_words()
    answer = f"; {escape(verdict.answer)}" if verdict.answer else ""
    if verdict.why == "busy":
        return (f"[yellow]![/] {who} but it is running ({cpu}{answer}): busy or starved of CPU, not hung; waiting "
                f"up to {verdict.limit:g}s of silence ({BUSY_FACTOR:g} × registry.ttl) before killing it")
    if verdict.why == "wedged":
        return (f"[yellow]![/] {who}, past the {verdict.limit:g}s a busy worker gets ({BUSY_FACTOR:g} × "
                f"registry.ttl), though it kept using CPU ({cpu}{answer}): wedged; killing it (SIGKILL) to restart it")
    because = {"stopped": f" (it is stopped: state {verdict.state}{answer})",
               "idle": f" (it used no CPU in the last {verdict.over or 0:.1f}s, state {verdict.state}{answer})",
               "unknown": f" ({escape(verdict.answer)})" if verdict.answer else ""}
    return (f"[yellow]![/] {who}: frozen or hung; killing it (SIGKILL) to restart it"
            f"{because.get(verdict.why, '')}")
