"""The children of one ``gamead up`` (nats-server, the API, the workers): their supervisor, recorded in
``gamead-up.json``, and the order they stop in."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

from rich.markup import escape

from gamead_cli import exitcodes
from gamead_cli.commands.up_console import say
from gamead_cli.commands.up_logs import child_error_line, last_log_line, metrics_port_lost, nats_port_taken
from gamead_core.config import GameadSettings
from gamead_core.datadir import DataDir
from gamead_core.proc import alive, start_time
from gamead_core.scaling.local import STOP_GRACE
from gamead_core.stop_bound import arm, up_bound
from gamead_core.supervisor import Child, Supervisor
from gamead_core.worker.faults import CRASH_EXIT_CODE

API_STOP_TIMEOUT = 15.0
NATS_STOP_TIMEOUT = 10.0


#: names of the children in the supervisor (and in <data_dir>/gamead-up.json); workers are worker-<k>
NATS_CHILD = "nats-server"
API_CHILD = "api"


def gamead_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "gamead_cli", *args]


def exit_meanings(settings: GameadSettings) -> dict[int, str]:
    """What a child's exit code means beyond gamead's own (README's exit codes), for the supervisor's line of its
    death: with fault injection on in mode ``crash``, 70 is that fault (``gamead_core.worker.faults``
    CRASH_EXIT_CODE; attack29a: "died with exit code 70" read as a bug). Pure."""
    faults = settings.worker.faults
    crash = faults.rate > 0 and faults.mode == "crash"
    return {CRASH_EXIT_CODE: "the injected crash fault"} if crash else {}


class UpStack:
    """The children of one ``gamead up`` and the order they stop in: workers, then the API, then NATS."""

    def __init__(self, settings: GameadSettings, data: DataDir) -> None:
        self.settings = settings
        self.data = data
        self._state_failing = False  #: a rewrite of gamead-up.json failed and was said; not written again since
        self.sup = Supervisor(on_event=lambda msg: say(f"[yellow]![/] {escape(msg)}"),
                              on_good=lambda msg: say(f"[green]✓[/] {escape(msg)}"),
                              on_spawn=lambda child: self._state_write(data.record, child, child.name, child.pid or 0),
                              on_end=lambda child: self._state_write(data.forget, child, child.pid or 0),
                              on_poll=self._state_file_again, on_exit=self._on_exit,
                              refusal_codes=frozenset({exitcodes.CONFIG}),
                              explain=lambda child: child_error_line(child.log_path) or last_log_line(child.log_path),
                              on_refused=lambda child, why: data.refused(child.name, child.refusals, why),
                              on_up=lambda child: data.serving(child.name), exit_meanings=exit_meanings(settings),
                              lost_port=lambda child: metrics_port_lost(child.log_path),  # a pick lost: picked again
                              restart_backoff=(Supervisor.restart_backoff[0], settings.embedded.restart_backoff_cap))

    def _state_write(self, write: Callable[..., None], child: Child, *args: Any) -> None:
        """``write(*args)`` (:meth:`DataDir.record` or :meth:`DataDir.forget`, for ``child``'s start or end): one that
        fails (``OSError``: a full disk) is said once until the file is written again, in words, and retried by
        :meth:`_state_file_again`. Before (attack41a F5), each failure was a hook's logged exception: a stop on a
        full disk printed ``on_end hook failed for worker-2 (OSError: [Errno 28] No space left on device, at
        pathlib.py:1078)`` for every child."""
        try:
            write(*args)
        except OSError as exc:
            if not self._state_failing:
                self._state_failing = True
                say(f"[yellow]![/] {escape(str(self.data.state_file))} cannot be rewritten "
                    f"({escape(exc.strerror or str(exc))}), here for {escape(child.name)} (pid {child.pid}): it may "
                    "name processes that ended, or miss one that runs; tried again every few seconds, said once "
                    "written again")

    def _state_file_again(self) -> None:
        """A rewrite of gamead-up.json failed (said once: :meth:`_state_write`): retried at every poll with back-off;
        said once when the file lists the processes that run again."""
        if self.data.retry_write():
            self._state_failing = False
            say(f"[green]✓[/] {escape(str(self.data.state_file))} written again: it lists the processes that run now")

    def _on_exit(self, child: Child, code: int) -> None:
        if code in self.sup.refusal_codes:
            return  # up ends with the child's own message (refused_start), said once
        if code > 0 and (line := last_log_line(child.log_path)):  # an exit, not a kill: say why
            say(f"  [dim]{escape(child.name)} log: {escape(line)}[/]")
            if child.name == NATS_CHILD and (taken := nats_port_taken(line)):  # kept: its clients connect there
                say(f"[yellow]![/] {escape(taken)}")

    def settle(self) -> None:
        """The stack is up: a child refused from now on (a restart, a new worker) is retried with back-off and the
        rest keeps running; so is nats-server or the API, waited for (listening, ready), if it exits 5 later. A
        worker started before stays in its start until its first registry heartbeat (up_liveness' probe): refused
        before it, it ends ``gamead up`` with its message."""
        self.sup.settled = True
        for name in (NATS_CHILD, API_CHILD):
            self.sup.seen_up(name)

    def hurry_workers(self) -> None:
        """A second stop signal: SIGTERM again to every worker still running (they hand back at once)."""
        for entry in self.data.live():  # same PID *and* start time: never a process that reused the number
            pid = entry["pid"]
            if entry["name"].startswith("worker") and alive(pid) and start_time(pid) == entry["start"]:
                try:
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        say("stopping now: workers hand their ads back")

    def stop_bound(self) -> float:
        """Seconds ``gamead up``'s whole stop may take from its first stop signal (:func:`gamead_core.stop_bound.
        up_bound`): the workers' drain (``worker.drain_timeout`` + 5 s), the API's 15 s, nats-server's 10 s, each
        SIGKILLed past its own, plus up's own awaits (10 s): 55 s with the default drain of 25 s."""
        return up_bound(self.settings.worker.drain_timeout + STOP_GRACE + API_STOP_TIMEOUT + NATS_STOP_TIMEOUT)

    def arm_stop(self) -> None:
        """The stop has begun: past :meth:`stop_bound` s, :meth:`kill_left` and exit 1 with one line naming them
        (:func:`gamead_core.stop_bound.arm`; once per process, later calls change nothing)."""
        arm(self.stop_bound(), "up", on_cut=self.kill_left)  # named in the cut's line, then SIGKILLed

    def kill_left(self) -> tuple[str, Callable[[], None]]:
        """The cut of a stop past its bound (:func:`gamead_core.stop_bound.arm`'s ``on_cut``, from its thread): the
        words naming every child this stack recorded that still runs (same PID *and* start time, never a process
        that reused the number), ``killing (SIGKILL) worker-1 (pid N), api (pid M)``, and the action that SIGKILLs
        them (one stopped by SIGSTOP dies by nothing else), run once the line is out."""
        left = [(str(e["name"]), int(e["pid"])) for e in self.data.live()
                if alive(e["pid"]) and start_time(e["pid"]) == e["start"]]

        def kill() -> None:
            for _, pid in left:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)

        named = ", ".join(f"{name} (pid {pid})" for name, pid in left)
        return (f"killing (SIGKILL) {named}" if left else "no child of it was left running"), kill

    def stop_all(self, drain_timeout: float) -> None:
        workers = [n for n in self.sup.children if n not in (API_CHILD, NATS_CHILD)]
        self.sup.stop_many(workers, timeout=drain_timeout + 5)
        self.sup.stop_many([API_CHILD], timeout=API_STOP_TIMEOUT)
        self.sup.stop_many(list(self.sup.children), timeout=NATS_STOP_TIMEOUT)  # nats last
