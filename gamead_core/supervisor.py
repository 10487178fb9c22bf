"""Supervising child processes on one machine (``gamead up``): start, restart with back-off, stop cleanly.

The restart policy is a pure function; :class:`Supervisor` applies it to real ``subprocess`` children.

Children never outlive the supervisor: each is started with :func:`gamead_core.proc.die_with_parent`
(Linux: the kernel sends it SIGTERM when the supervising thread dies, even by SIGKILL) and with
``GAMEAD_PARENT_PID`` set, which ``gamead`` children also watch themselves (:func:`~gamead_core.proc.
watch_parent`, the fallback where the kernel cannot). Start children from one long-lived thread.

Hooks: ``on_event(message)`` for the console; ``on_spawn(child)`` after every (re)start, e.g. to record
PIDs (``on_poll()`` after every :meth:`Supervisor.poll`, e.g. to retry such a record that failed);
``on_exit(child, code)`` when a child is found dead (before its restart is scheduled; ``code`` is
the exit status, negative for a signal), e.g. to hand its in-flight work to others; ``on_end(child)`` once a
process of it has ended, found dead or stopped, e.g. to drop its PID from a record of the live ones. A hook
that raises is logged (and ``on_spawn``'s said on the console), never fatal: ``gamead up``'s hooks rewrite
``gamead-up.json``, which fails on a full disk, exactly when children die. A restart whose process cannot be
started (``OSError``) is said and tried again after a longer back-off, never the end of the stack. ``on_end``
travels with the child (:attr:`Child.on_end`): a child moved to another supervisor to be stopped there (a
local scale-down) still tells the supervisor that started it.

A child that exits with one of ``refusal_codes`` (``gamead``'s exit code 5: its configuration was refused, e.g.
``queue.partitions`` against the streams) during its start, started while the stack starts, is not restarted —
it would only be refused again — and is kept in :attr:`Supervisor.refused` for the caller (``gamead up`` ends
with the child's own message and code). Its start ends once the caller has seen it serving
(:meth:`Supervisor.seen_up`: ``gamead up`` calls it for nats-server and the API when the stack is up, for a
worker or the API at its first registry heartbeat). A refusal after that, or of a process started once the caller
said the stack is up (:attr:`Supervisor.settled`), is one event line (with ``explain(child)``: why, e.g. the
child's own error line; a child seen serving is said to have stopped after running so long, not to have been
refused its start) and a restart with back-off like any death: one child refused later (say, by a stream
someone changed, or by NATS refusing its credentials after a restart) must not take the running rest down
(attack28b F1: a worker up for 4 minutes exited 5 after a repartition and ``gamead up`` stopped everything).
Such a child is retried for as long as it is refused (the stack must not die of it), but not in silence (review28
L2): :attr:`Child.refusals` counts its refusals in a row (since it was last seen serving), the event line says the
count from the second one and is said only at :func:`refusal_said`'s tries, its restart only after its first
(:func:`restart_said`: attack28c F3, a ``restarted`` line per retry), and ``on_refused(child, why)`` (``gamead
up``: listed as refused in ``gamead-up.json``) at every one; ``on_up(child)`` once it is seen serving again, said
through ``on_good(message)`` (a recovery: ``gamead up`` prints it ``✓``, its other events ``!``; attack45 F2).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from gamead_core.log_bound import CHECK_EVERY, LOG_LIMIT, bound_log
from gamead_core.proc import PARENT_PID_ENV, die_with_parent
from gamead_core.restart_streak import (REFUSALS_SAID_EVERY, exit_words, forgiven_words, refusal_said, restart_said,
                                       restart_words, stopped_from_outside, streak_after_exit, streak_after_recovery)
from gamead_core.worker.backoff import backoff_ceiling

log = logging.getLogger(__name__)


def restart_delay(recent_failures: int, base: float = 0.5, cap: float = 30.0) -> float:
    """Seconds before a restart after ``recent_failures`` deaths in a row: 0 for one, then min(cap, base·2^(n−2))."""
    return backoff_ceiling(recent_failures - 1, base=base, cap=cap)


@dataclass
class Child:
    """One supervised process and its restart bookkeeping."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    started_wall: float = 0.0  #: ``time.time()`` just before its spawn: its registry entry starts after it
    failures: int = 0
    restarts: int = 0
    restart_at: float | None = None
    retired: bool = False  # being stopped on purpose: do not restart
    #: started before the stack was up (:attr:`Supervisor.settled`) and not seen serving since
    #: (:meth:`Supervisor.seen_up`): a refusal of this process is a refusal of the stack's start, which it ends
    refusal_final: bool = True
    #: this process was seen serving (:meth:`Supervisor.seen_up`): an exit of it is no refusal of its start
    up: bool = False
    refused: int | None = None  #: the exit code of a refused start (one of the supervisor's refusal_codes)
    #: its retried exits with a refusal code since it was last seen serving (:meth:`Supervisor.seen_up`)
    refusals: int = 0
    quiet_restart: bool = False  #: its next restart is not said (a refusal in a row: :func:`restart_said`)
    #: its last death that grew its streak, until :meth:`Supervisor.death_read` reads it: (pid, streak before, when)
    death: tuple[int, int, float] | None = None
    #: called with this child once its process has ended (found dead or stopped); set by the starting supervisor
    on_end: Callable[[Child], None] | None = field(default=None, repr=False)
    #: builds ``argv`` again before each restart (e.g. a port kept for the child was taken meanwhile); None: the
    #: same ``argv`` every time
    command: Callable[[], list[str]] | None = field(default=None, repr=False)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


@dataclass
class Supervisor:
    """Starts children, restarts the ones that die (even by SIGKILL), stops them with SIGTERM."""

    on_event: Callable[[str], None] = field(default=lambda msg: log.info(msg))
    on_good: Callable[[str], None] | None = None  #: a recovery's line (serving again); None: ``on_event``
    children: dict[str, Child] = field(default_factory=dict)
    on_spawn: Callable[[Child], None] | None = None
    on_exit: Callable[[Child, int], None] | None = None
    on_end: Callable[[Child], None] | None = None
    #: exit codes that mean "this configuration is refused": such a child is not restarted while the stack starts
    refusal_codes: frozenset[int] = frozenset()
    exit_meanings: dict[int, str] = field(default_factory=dict)  #: said in a death's line (70: the injected crash)
    #: the stack is up: processes started from now on are restarted with back-off after a refusal too
    settled: bool = False
    #: why ``child`` refused (its own error line), for the one event line of a refusal after the start
    explain: Callable[[Child], str] | None = None
    #: called at the end of every :meth:`poll`, e.g. to retry a record a hook could not write (``gamead up``:
    #: :meth:`gamead_core.datadir.DataDir.retry_write`); a failing hook is logged, never fatal
    on_poll: Callable[[], None] | None = None
    #: ``on_refused(child, why)`` at every retried refusal (:attr:`Child.refusals` counts them); ``on_up(child)``
    #: once a child refused before is seen serving again; failing hooks are logged, never fatal
    on_refused: Callable[[Child, str], None] | None = None
    on_up: Callable[[Child], None] | None = None
    #: ``lost_port(child)`` (must not raise): what to say, "" if none, when its refusal is of a port the caller picked
    #: for it, taken by another process before it bound it: a retry like any (its ``command`` picks again), said so
    lost_port: Callable[[Child], str] | None = None
    #: bytes a child's log may reach before it is copied to ``<name>.1`` and truncated (:mod:`gamead_core.log_bound`)
    log_limit: int = LOG_LIMIT
    restart_backoff: tuple[float, float] = (0.5, 30.0)  #: restart_delay's base and cap (embedded.restart_backoff_cap)
    logs_checked_at: float = field(default=0.0, repr=False)  #: when :meth:`poll` last looked at the logs (monotonic)

    @property
    def refused(self) -> list[Child]:
        """The children that exited with a refusal code (not restarted), oldest first."""
        return [c for c in self.children.values() if c.refused is not None]

    def start(self, name: str, argv: list[str] | Callable[[], list[str]], env: dict[str, str], log_path: Path) -> Child:
        """Start child ``name`` (replacing any earlier one of that name) and return it. ``argv``: its command
        line, or a function returning it, called again before each restart."""
        command = argv if callable(argv) else None
        child = Child(name, command() if command is not None else argv, env, log_path, on_end=self.on_end,
                      command=command)
        self.children[name] = child
        self._spawn(child, first=True)
        return child

    def _spawn(self, child: Child, *, first: bool = False) -> None:
        if child.command is not None and not first:
            child.argv = child.command()
        child.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(child.log_path, "ab") as out:
            child.started_wall = time.time()
            child.proc = subprocess.Popen(
                child.argv, env={**child.env, PARENT_PID_ENV: str(os.getpid())},
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                # its own process group (our Ctrl-C handling decides how children stop) in our session: if we
                # die while it is stopped (SIGSTOP), the kernel continues it (SIGHUP + SIGCONT to a process
                # group orphaned with a stopped member, POSIX "orphaned process group"), so the SIGTERM below
                # is acted on; a session of its own is orphaned from the start and would stay stopped
                process_group=0,
                preexec_fn=die_with_parent(signal.SIGTERM),  # noqa: PLW1509 - two syscalls, nothing else
            )
        child.started_at = time.monotonic()
        child.restart_at = None
        child.refusal_final = not self.settled
        child.up = False
        if self.on_spawn is not None:
            try:
                self.on_spawn(child)
            except Exception as exc:  # noqa: BLE001 - a failing hook is logged, never fatal
                # gamead up's hook rewrites gamead-up.json: on a full disk that fails, and the stack must keep
                # its children running (the drill's one dead worker took the whole stack down with it)
                log.exception("on_spawn hook failed for %s", child.name)
                self._say(child, f"{child.name} (pid {child.pid}) runs, but its start could not be recorded: "
                                 f"{type(exc).__name__}: {exc}")

    def seen_up(self, name: str, pid: int | None = None) -> None:
        """Child ``name`` — its process ``pid`` (None: the one running now) — was seen serving (its listener, its
        readiness, its first registry heartbeat): its start is over. From now on an exit of that process with a
        refusal code never ends the stack: it is one event line and a restart with back-off (module docstring).
        Idempotent; a child not known, or run by another process now, is left as it is."""
        child = self.children.get(name)
        if child is None or child.proc is None or (pid is not None and child.pid != pid):
            return
        child.up = True
        child.refusal_final = False
        if child.refusals:
            self._say(child, f"{child.name} (pid {child.pid}) is serving again, after {child.refusals} refused "
                             "start(s) in a row", good=True)
            child.refusals = 0
            self._hook(self.on_up, child)

    def _hook(self, hook: Callable[..., None] | None, child: Child, *args: object) -> None:
        """``hook(child, *args)``; a failing hook is logged, never fatal."""
        if hook is not None:
            try:
                hook(child, *args)
            except Exception:  # noqa: BLE001 - a failing hook is logged, never fatal
                log.exception("hook failed for %s", child.name)

    def _restart(self, child: Child, now: float) -> None:
        """Start ``child`` again after its back-off. A process that cannot be started (``OSError``: no space
        for its log, no memory or PIDs for a fork) is not the end of the stack: it is said, and tried again
        after the next, longer back-off."""
        child.restarts += 1
        try:
            self._spawn(child)
        except OSError as exc:
            child.failures += 1  # at least the base back-off (0.5 s): a fork failing at once is not retried in a spin
            delay = restart_delay(max(2, child.failures), *self.restart_backoff)
            child.restart_at = now + delay
            self._say(child, f"{child.name} could not be restarted ({type(exc).__name__}: {exc}); "
                             f"retrying in {delay:.1f}s")
            return
        if not child.quiet_restart:
            self._say(child, f"{child.name} restarted (pid {child.pid})")

    def _say(self, child: Child, message: str, good: bool = False) -> None:
        """``on_event(message)`` (``on_good``'s if set, for a ``good`` one); a failing hook is logged, never fatal."""
        try:
            (self.on_good if good and self.on_good else self.on_event)(message)
        except Exception:  # noqa: BLE001 - logged, never fatal
            log.exception("on_event hook failed for %s", child.name)

    @staticmethod
    def _ended(child: Child) -> None:
        """Tell ``child.on_end`` that its process has ended; a failing hook is logged, never fatal."""
        if child.on_end is not None:
            try:
                child.on_end(child)
            except Exception:  # noqa: BLE001 - a failing hook is logged, never fatal
                log.exception("on_end hook failed for %s", child.name)

    def _why(self, child: Child) -> str:
        try:
            return self.explain(child) if self.explain is not None else ""
        except Exception:  # a failing hook is logged, never fatal
            log.exception("explain hook failed for %s", child.name)
            return ""

    def death_read(self, name: str, pid: int, completed: int, lone_charged: bool) -> None:
        """The recovery of child ``name``'s process ``pid`` read its death (:func:`streak_after_recovery`): no crash
        loop leaves its streak as it was, and a restart still waiting comes at the base delay after the death
        (said). A later death of it, a stop, a retired or replaced child: left alone."""
        child = self.children.get(name)
        if child is None or child.retired or child.death is None or child.death[0] != pid:
            return
        _, before, died = child.death
        if (streak := streak_after_recovery(before, completed, lone_charged)) is None:
            return
        child.failures, child.death = streak, None
        at = died + restart_delay(1, *self.restart_backoff)  # at once: as after a first death in a row
        if child.restart_at is not None and child.restart_at > at:
            child.restart_at, words = at, forgiven_words(completed)
            self._say(child, f"{child.name} (pid {pid}) restarts as after a first death instead ({words}: no crash "
                             f"loop); {restart_words(child.restart_at - time.monotonic())}")

    def poll(self) -> None:
        """Notice dead children and restart them when their back-off has passed. Call periodically."""
        now = time.monotonic()
        for child in self.children.values():
            if child.retired or child.proc is None or child.refused is not None:
                continue
            code = child.proc.poll()
            if code is None:
                continue
            first = child.restart_at is None and code in self.refusal_codes  # judged once (a lost port reads a log)
            lost = self.lost_port(child) if self.lost_port and first else ""
            if first and child.refusal_final and not lost:
                child.refused = code
                self.on_event(f"{child.name} (pid {child.proc.pid}) refused to start (exit code {code}); "
                              "not restarted")
                self._ended(child)
                self._hook(self.on_exit, child, code)
                continue
            if child.restart_at is None:
                ran = now - child.started_at
                child.failures, reckoned = streak_after_exit(child.failures, ran, code)
                child.death = None if stopped_from_outside(code) else (child.proc.pid, child.failures - 1, now)
                delay = restart_delay(reckoned, *self.restart_backoff)
                child.restart_at = now + delay
                child.quiet_restart = code in self.refusal_codes and not restart_said(child.refusals + 1)
                if code in self.refusal_codes:
                    why, child.refusals = lost or self._why(child), child.refusals + 1
                    what = (f"stopped with exit code {code} after running {ran:.0f}s (its configuration is refused "
                            "now)" if child.up else f"refused to start (exit code {code})")
                    again = (f" ({child.refusals} times in a row: retried for as long as it is refused, said every "
                             f"{REFUSALS_SAID_EVERY} tries)" if child.refusals > 1 else "")
                    if refusal_said(child.refusals):
                        self.on_event(f"{child.name} (pid {child.proc.pid}) {what}{again}{f': {why}' if why else ''}; "
                                      f"the rest keeps running; {restart_words(delay, 'retrying')}")
                    self._hook(self.on_refused, child, why)
                else:
                    how = exit_words(code, self.exit_meanings)
                    self.on_event(f"{child.name} (pid {child.proc.pid}) {how}; {restart_words(delay)}")
                self._ended(child)
                self._hook(self.on_exit, child, code)
            elif now >= child.restart_at:
                self._restart(child, now)
        if now - self.logs_checked_at >= CHECK_EVERY:
            self.bound_logs()
            self.logs_checked_at = now
        if self.on_poll is not None:
            try:
                self.on_poll()
            except Exception:  # noqa: BLE001 - a failing hook is logged, never fatal
                log.exception("on_poll hook failed")

    def bound_logs(self) -> None:
        """Keep every child's log within :attr:`log_limit` (:func:`~gamead_core.log_bound.bound_log`); :meth:`poll`
        calls it every :data:`~gamead_core.log_bound.CHECK_EVERY` s. Never raises."""
        for path in {child.log_path for child in self.children.values()}:
            bound_log(path, self.log_limit)

    def stop(self, name: str, timeout: float) -> None:
        self.stop_many([name], timeout)

    def stop_many(self, names: list[str], timeout: float) -> None:
        """SIGTERM the named children (they drain), SIGKILL whoever is still alive after ``timeout`` seconds, and
        say so (``on_event``): a child killed on the way out is named, not stopped in silence."""
        targets = [self.children[n] for n in names if n in self.children]
        for child in targets:
            child.retired = True
            if child.alive:
                assert child.proc is not None
                os.kill(child.proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for child in targets:
            if child.proc is None:
                continue
            try:
                child.proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.kill(child.proc.pid, signal.SIGKILL)
                child.proc.wait()
                # a failing hook must not leave the other children unstopped
                self._say(child, f"{child.name} (pid {child.proc.pid}) did not stop within {timeout:g}s of its "
                                 f"SIGTERM; killed (SIGKILL); its log: {child.log_path}")
            self._ended(child)
        for child in targets:
            self.children.pop(child.name, None)

    def stop_all(self, timeout: float) -> None:
        self.stop_many(list(self.children), timeout)
