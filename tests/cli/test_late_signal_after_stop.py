"""A signal after a command's stop is over (its line written, its exit code known) never changes its code (attack56b
F2, F3): a supervisor's SIGTERM and a closed terminal's SIGHUP come together, and the SIGHUP, arriving once the command
had set the default actions back for the interpreter's exit (``gamead_cli.stops.ended``; ``gamead up`` right after
its stack stopped), ended the process by SIGHUP: 129 where the README says 143 (a command stopped by SIGTERM) or 0
(``gamead up`` stopped by it). 1 run in 6 of ``gamead up`` started, SIGTERM, SIGHUP 0.1 s later.

Each command runs in a fresh interpreter held by a ``sitecustomize`` (on its ``PYTHONPATH``): at the first import of
``$HOLD_AT`` (where the test sends the first signal) and at its exit (an ``atexit`` hook, the first registered, so
the last run: after the entry point's ``ended()``), each creating a marker file and waiting for a release file. No
sleep decides anything."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

from tests.forked_popen import GameadPopen
from tests.support import PortTaken, clean_env, gamead_argv, on_a_free_port, port_said_lost, wait_for

SITE = """
import atexit, os, sys, time


def _hold(mark, until):
    open(mark, "w").close()
    deadline = time.monotonic() + 120  # never held for ever if the test is gone
    while not os.path.exists(until) and time.monotonic() < deadline:
        time.sleep(0.01)


class _HoldAtImport:
    held = False

    def find_spec(self, name, path=None, target=None):
        if name == os.environ.get("HOLD_AT") and not self.held:
            self.held = True
            _hold(os.environ["HOLD_MARK"], os.environ["HOLD_UNTIL"])
        return None


sys.meta_path.insert(0, _HoldAtImport())
atexit.register(_hold, os.environ["EXIT_MARK"], os.environ["EXIT_UNTIL"])
"""


class HeldTwice:
    """``gamead <args>`` in ``tmp_path``, held at the import of ``at`` (None: never) and at its exit."""

    def __init__(self, tmp_path: Path, at: str | None, *args: str) -> None:
        site = tmp_path / "hold-site"
        site.mkdir(parents=True)
        (site / "sitecustomize.py").write_text(SITE)
        self.mark, self.until = tmp_path / "held", tmp_path / "go-on"
        self.exit_mark, self.exit_until = tmp_path / "held-at-exit", tmp_path / "exit-go-on"
        path = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)
        env = clean_env(PYTHONPATH=path, HOLD_AT=at or "", HOLD_MARK=str(self.mark), HOLD_UNTIL=str(self.until),
                        EXIT_MARK=str(self.exit_mark), EXIT_UNTIL=str(self.exit_until))
        self.out = tmp_path / "out.txt"
        with self.out.open("w") as out:
            self.proc = GameadPopen(gamead_argv(*args), env=env, cwd=tmp_path, stdin=subprocess.DEVNULL,
                                    stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    def wait(self, probe: Callable[[], bool], what: str) -> None:
        wait_for(lambda: probe() or self.proc.poll() is not None, timeout=120, what=what)
        assert probe(), self.out.read_text()

    def end(self) -> int:
        """Release the exit's hold: the exit code once it has ended."""
        self.exit_until.touch()
        try:
            return self.proc.wait(timeout=120)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()


def test_a_sighup_after_a_command_stopped_by_sigterm_has_ended_leaves_its_143(
        tmp_path: Path, closed_port: Callable[[], int]) -> None:
    """Before: -1 (ended by the SIGHUP), after: 143; the same SIGTERM again still ends it at once (by it)."""
    for case, late in (("other", signal.SIGHUP), ("again", signal.SIGTERM)):
        held = HeldTwice(tmp_path / case, "gamead_cli.commands.worker", "worker", "--nats-url",
                         f"nats://127.0.0.1:{closed_port()}")
        held.wait(held.mark.exists, "the hold at the worker's import")
        os.kill(held.proc.pid, signal.SIGTERM)  # the stop: one line, exit 143
        held.until.touch()
        held.wait(held.exit_mark.exists, "the hold at its exit")
        assert "interrupted (SIGTERM)" in held.out.read_text()
        os.kill(held.proc.pid, late)
        assert held.end() == (143 if late == signal.SIGHUP else -signal.SIGTERM), (case, held.out.read_text())


def test_a_sighup_after_gamead_up_stopped_on_sigterm_leaves_its_exit_0(tmp_path: Path) -> None:
    """Before: -1 (ended by the SIGHUP, after '✓ stopped'), after: 0."""
    def start(port: int) -> HeldTwice:  # picked again if another process of the machine takes it first
        where = tmp_path / f"on-{port}"
        held = HeldTwice(where, None, "up", "--workers", "0", "--port", str(port), "--data-dir", str(where / "stack"))
        try:
            held.wait(lambda: "Press Ctrl-C" in held.out.read_text(), "the stack up")
        except AssertionError:
            held.end()
            if port_said_lost(held.out.read_text(), port):
                raise PortTaken(held.out.read_text()) from None
            raise
        return held

    held = on_a_free_port(start)
    os.kill(held.proc.pid, signal.SIGTERM)
    held.wait(held.exit_mark.exists, "the hold at its exit")
    assert held.out.read_text().rstrip().endswith("stopped")
    os.kill(held.proc.pid, signal.SIGHUP)  # the closed terminal's
    assert held.end() == 0, held.out.read_text()


def test_a_sighup_after_a_worker_stopped_on_sigterm_leaves_its_exit_0(
        tmp_path: Path, closed_port: Callable[[], int]) -> None:
    """A worker stops on its event loop's handlers, which the loop's end takes away (the defaults back): before, -1
    (ended by the SIGHUP), after 0, as with no SIGHUP."""
    held = HeldTwice(tmp_path, None, "worker", "--nats-url", f"nats://127.0.0.1:{closed_port()}")
    held.wait(lambda: "cannot reach NATS" in held.out.read_text(), "the worker waiting for NATS")
    os.kill(held.proc.pid, signal.SIGTERM)
    held.wait(held.exit_mark.exists, "the hold at its exit")
    os.kill(held.proc.pid, signal.SIGHUP)
    assert held.end() == 0, held.out.read_text()
