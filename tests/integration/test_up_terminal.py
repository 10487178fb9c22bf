"""``gamead up`` stops when its terminal goes away, even where no SIGHUP reaches it (hangup57): under a wrapper that
ignores SIGHUP (``gamead up`` then finds it ignored, as under ``nohup``), as the session's leader or below it, and
under ``make up``. The kernel sends SIGHUP to the session's leader and its foreground job only, and a wrapper's
ignored one is inherited; before, such a ``gamead up`` ran on with its terminal gone, nats-server, the API and its
workers orphaned with it.

Real processes throughout: a real pty the test holds (``pty.openpty``), a ``sh`` wrapper running
``trap "" HUP`` first, a real ``gamead up`` with its nats-server, API and worker (or the real ``make up`` recipe,
its venv step skipped with ``-o``). The test closes the pty's master (a terminal emulator closing, tmux killing
the pane, ``script`` ending) and waits, with a deadline, for every process up started to be gone; a failing test
SIGKILLs, by PID, whatever is left (:meth:`Started.kill_everything`).

Without the fix (``gamead_cli/commands/up.py`` as on main): each of the 4 wrapped cases ran on past a 30 s deadline,
``gamead up`` and its 3 children all still there (4 of 4 failed). With it: each stops, the workers drained, and the
wrapper exits 0, as on SIGHUP (README "Stopping"); with no wrapper, the kernel's SIGHUP and the watch make one stop.
"""

from __future__ import annotations

import os
import pty
import select
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from tests.forked_popen import takes_the_terminal
from tests.integration.test_up_parent import ROOT, VENV, Started, _env
from tests.support import gamead_argv, on_a_free_port, wait_for

#: a wrapper that ignores SIGHUP, then becomes the command (``exec``): ``gamead up`` inherits SIGHUP ignored
WRAPPED = 'trap "" HUP; exec "$@"'
#: the same, but the shell stays (the session's leader when it has the terminal), the command its child
BELOW = 'trap "" HUP; "$@"'
#: seconds the stack is given to stop once its terminal is gone (a drain of an idle worker, then the API, NATS)
DEADLINE = 60


class _OnAPty:
    """A command on the slave of a pty the test holds: what it writes there is copied to ``out`` (a thread reads
    the master) until :meth:`hang_up` stops the copy and closes the master, as a terminal emulator does."""

    def __init__(self, argv: list[str], out: Path, *, controlling: bool, stderr_to_file: bool) -> None:
        self.master, slave = pty.openpty()
        self.out, self._stop = out, threading.Event()
        with open(out, "ab") as sink:
            self.popen = subprocess.Popen(
                argv, env=_env(), stdin=slave, stdout=slave, stderr=sink if stderr_to_file else slave,
                cwd=out.parent, start_new_session=True, preexec_fn=takes_the_terminal if controlling else None)
        os.close(slave)
        self._copy = threading.Thread(target=self._copying, daemon=True)
        self._copy.start()

    def _copying(self) -> None:
        with open(self.out, "ab", buffering=0) as sink:
            while not self._stop.is_set():
                if select.select([self.master], [], [], 0.2)[0]:
                    try:
                        chunk = os.read(self.master, 65536)
                    except OSError:  # EIO: no process holds the slave any more
                        return
                    if not chunk:
                        return
                    sink.write(chunk)

    def hang_up(self) -> None:
        """Close the terminal: the pty's master closed once nothing reads it any more."""
        self._stop.set()
        self._copy.join(timeout=10)
        os.close(self.master)
        self.master = -1

    def close(self) -> None:
        if self.master != -1:
            self.hang_up()


def _ready_on_a_pty(argv: list[str], tmp_path: Path, data_dir: Path, **how: bool) -> tuple[Started, _OnAPty]:
    """``argv`` (its port's ``{port}`` filled in) on a pty, its ``gamead up`` ready (:meth:`Started.wait_ready`), on a
    port picked again (:func:`on_a_free_port`) if another process took it first; everything SIGKILLed if not."""
    def start(port: int) -> tuple[Started, _OnAPty]:
        term = _OnAPty([word.format(port=port) for word in argv], tmp_path / f"up-{port}.out", **how)
        stack = Started(term.popen, data_dir, term.out)
        try:
            stack.wait_ready()
        except BaseException:  # PortTaken included: on_a_free_port picks another port
            stack.kill_everything()
            term.close()
            raise
        return stack, term

    return on_a_free_port(start)


def _up(data_dir: Path) -> list[str]:
    return gamead_argv("up", "--port", "{port}", "--data-dir", str(data_dir), "--workers", "1", "--no-autoscale")


def _make_up(data_dir: Path) -> list[str]:
    return ["make", "-s", "-C", str(ROOT), "-o", f"{VENV}/.installed", f"VENV={VENV}", "up",
            f"ARGS=--port {{port}} --data-dir {data_dir} --workers 1 --max-workers 1"]


@pytest.mark.parametrize(("wrapper", "command", "controlling", "stderr_to_file"), [
    (WRAPPED, _up, False, True),  # the pty only its stdio: closing it sends no signal at all
    (WRAPPED, _up, True, False),  # its controlling terminal, up its session's leader: the kernel's SIGHUP ignored
    (BELOW, _up, True, False),  # below the session's leader (the shell), both ignoring SIGHUP
    (WRAPPED, _make_up, True, False),  # `make up` (make keeps SIGHUP ignored, up its child: --die-with-parent idle)
    (None, _up, True, True),  # no wrapper: the kernel's SIGHUP taken as well, beside the watch; one stop
], ids=["no signal", "the kernel's SIGHUP ignored", "below its session's leader", "make up", "the kernel's SIGHUP"])
@pytest.mark.timeout(360)  # a stack's start (up to 240 s at load: tests/unit/test_up_start_budgets.py), then its stop
def test_a_closed_terminal_stops_gamead_up_and_everything_it_started(
        tmp_path: Path, wrapper: str | None, command: object, controlling: bool, stderr_to_file: bool) -> None:
    if command is _make_up and shutil.which("make") is None:
        pytest.skip("needs make")
    data_dir = tmp_path / "data"
    argv = command(data_dir) if wrapper is None else ["sh", "-c", wrapper, "sh", *command(data_dir)]  # type: ignore
    stack, term = _ready_on_a_pty(argv, tmp_path, data_dir, controlling=controlling, stderr_to_file=stderr_to_file)
    try:
        assert len(stack.alive()) == 4  # up, nats-server, api, worker-1
        said = stack.output()
        assert ("SIGHUP was ignored when gamead up started, but its stdin is a terminal: closing that terminal "
                "stops the stack all the same" in said) is (wrapper is not None), said[-2000:]
        term.hang_up()
        wait_for(lambda: not stack.alive(), timeout=DEADLINE, what="gamead up and every process it started to be gone")
        assert stack.parent.wait(timeout=DEADLINE) == 0  # the wrapper (make) ended with up's 0, as on SIGHUP
        if stderr_to_file:  # the console's lines, which a closed terminal loses, kept in the file
            said = stack.output()
            if wrapper is not None:  # else the kernel's SIGHUP may come first: then the stop is its, no line
                assert "! the terminal on gamead up's stdin hung up (closed): stopping the stack as on SIGHUP" in said
            assert "stopping: workers drain first" in said and said.rstrip().endswith("stopped"), said[-2000:]
            assert "Ctrl-C or SIGTERM twice to hurry" in said and "Traceback" not in said, said[-2000:]
    finally:
        stack.kill_everything()
        term.close()



def test_a_terminal_gone_before_up_watches_it_stops_gamead_up_all_the_same(tmp_path: Path) -> None:
    """The terminal hung up before ``gamead up`` looked at its stdin (a tmux pane killed, an SSH session dropped
    within the second up takes to start): a hung-up terminal is no terminal to ``isatty`` (EIO), so before, up
    watched nothing and started the whole stack on, under a wrapper ignoring SIGHUP, with no terminal ever to stop
    it. It is a terminal gone: up stops as on SIGHUP, exit 0, nothing left running."""
    data_dir, out = tmp_path / "data", tmp_path / "up.out"

    def start(port: int) -> None:  # the port only names the stack: up stops before it would bind it
        master, slave = pty.openpty()
        os.close(master)  # hung up before up even runs: the same as in the second it takes to reach its watch
        argv = ["sh", "-c", WRAPPED, "sh", *[word.format(port=port) for word in _up(data_dir)]]
        try:
            with open(out, "ab") as sink:
                popen = subprocess.Popen(argv, env=_env(), stdin=slave, stdout=slave, stderr=sink, cwd=tmp_path,
                                         start_new_session=True)
        finally:
            os.close(slave)
        stack = Started(popen, data_dir, out)
        try:
            wait_for(lambda: (stack.up_pid(), popen.poll())[1] is not None, timeout=DEADLINE, interval=0.1,
                     what="gamead up, its terminal gone, to end")
            said = stack.output()
            assert popen.returncode == 0, said[-2000:]
            assert "! the terminal on gamead up's stdin hung up (closed): stopping the stack as on SIGHUP" in said, said
            assert not stack.alive() and "Traceback" not in said, said[-2000:]
        finally:
            stack.kill_everything()

    on_a_free_port(start)


@pytest.mark.timeout(360)  # a stack's start (up to 240 s at load: tests/unit/test_up_start_budgets.py), then its stop
def test_a_closed_terminal_stops_gamead_up_whose_console_pipe_lost_its_reader(tmp_path: Path) -> None:
    """``gamead up 2>&1 | tee up.log`` under a wrapper ignoring SIGHUP, tee gone with the terminal (killed first
    here): up's line saying the terminal hung up met the broken pipe, rich's console raised ``SystemExit(1)`` in
    the watch's thread, which ended unseen before it asked the stop (attack57b: 1 of 1 still running 60 s on). Now
    the line is dropped and the stack stops as on SIGHUP: exit 0, nothing left."""
    data_dir, out = tmp_path / "data", tmp_path / "up.out"

    def start(port: int) -> tuple[int, subprocess.Popen[bytes], subprocess.Popen[bytes], Started]:
        master, slave = pty.openpty()
        with open(out, "ab") as sink:
            tee = subprocess.Popen(["cat"], stdin=subprocess.PIPE, stdout=sink, start_new_session=True)
        argv = ["sh", "-c", WRAPPED, "sh", *[word.format(port=port) for word in _up(data_dir)]]
        try:
            popen = subprocess.Popen(argv, env=_env(), stdin=slave, stdout=tee.stdin, stderr=subprocess.STDOUT,
                                     cwd=tmp_path, start_new_session=True)
        finally:
            os.close(slave)
            tee.stdin.close()  # type: ignore[union-attr]
        stack = Started(popen, data_dir, out)
        try:
            stack.wait_ready()
        except BaseException:  # PortTaken included: on_a_free_port picks another port
            stack.kill_everything()
            os.close(master)
            tee.kill()
            tee.wait(timeout=10)
            raise
        return master, tee, popen, stack

    master, tee, popen, stack = on_a_free_port(start)
    try:
        tee.kill()
        tee.wait(timeout=10)
        os.close(master)
        master = -1
        wait_for(lambda: not stack.alive(), timeout=DEADLINE, what="gamead up and every process it started to be gone")
        assert popen.wait(timeout=DEADLINE) == 0
    finally:
        stack.kill_everything()
        if master != -1:
            os.close(master)
        tee.kill()
        tee.wait(timeout=10)


@pytest.mark.timeout(360)  # a stack's start (up to 240 s at load: tests/unit/test_up_start_budgets.py), then its stop
def test_the_tty_check_is_a_setting_too_a_stack_told_so_outlives_its_terminal(tmp_path: Path) -> None:
    """attack57b: ``--no-tty-check`` had no ``GAMEAD_*`` / config.yaml spelling (house rule 7), so a service file or
    a ``.env`` could not say it. ``GAMEAD_EMBEDDED__TTY_CHECK=false`` (``embedded.tty_check: false``) now keeps the
    stack running with its terminal gone before up looked at it (before: the variable changed nothing and up
    stopped at once, 1 of 1). Stopped here by SIGTERM, exit 0."""
    data_dir, out = tmp_path / "data", tmp_path / "up.out"

    def start(port: int) -> Started:
        master, slave = pty.openpty()
        os.close(master)  # the terminal gone: with the check on, up stops at once (the test above)
        argv = ["sh", "-c", WRAPPED, "sh", *[word.format(port=port) for word in _up(data_dir)]]
        try:
            with open(out, "ab") as sink:
                popen = subprocess.Popen(argv, env=_env(GAMEAD_EMBEDDED__TTY_CHECK="false"), stdin=slave,
                                         stdout=slave, stderr=sink, cwd=tmp_path, start_new_session=True)
        finally:
            os.close(slave)
        stack = Started(popen, data_dir, out)
        try:
            stack.wait_ready()
        except BaseException:  # PortTaken included: on_a_free_port picks another port
            stack.kill_everything()
            raise
        return stack

    stack = on_a_free_port(start)
    try:
        assert "hung up" not in stack.output() and len(stack.alive()) == 4, stack.output()[-2000:]
        stack.parent.terminate()
        assert stack.parent.wait(timeout=DEADLINE) == 0, stack.output()[-2000:]
        wait_for(lambda: not stack.alive(), timeout=DEADLINE, what="gamead up and every process it started to be gone")
    finally:
        stack.kill_everything()
