"""``gamead top`` ends through its own exit path however it is stopped from outside, and no process outlives its
terminal (topsig44, regress44 F8: ``timeout 8 script -qc "gamead top --record …"`` left an orphan, its pty gone,
burning 22 % of a core for 11 min, Textual's input thread reading end-of-file from the hung-up terminal for ever).

Each test runs ``gamead top --replay`` (no server needed) as a real process on a pty the test holds, stops it from
outside and waits, with a deadline, for the process to end; it is killed by its PID in ``finally``.

Without the fix (``gamead_cli/commands/top.py``, ``gamead_cli/tui/app.py`` and ``app_stops.py`` as on main), of
the 6 cases: SIGTERM and SIGHUP exited 143 / 129 but printed a KeyboardInterrupt traceback on the terminal; the
terminal closed with no signal left top running, 3 threads, 449 CPU ticks in 15 s (still running at the deadline);
the terminal closed under the kernel's SIGHUP, and SIGTERM then the terminal closed (``script``'s way), exited 1.
With it: 143 / 129 with the terminal given back (its alternate screen left) and the one line ``error: interrupted
(SIGTERM)``; a closed terminal ends it, 129 (143 after a SIGTERM first).
"""

from __future__ import annotations

import asyncio
import os
import pty
import select
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from textual.drivers._writer_thread import MAX_QUEUED_WRITES, WriterThread

from gamead_cli import exitcodes, first_signals
from gamead_cli.tui.app_stops import StopsFromOutside, WatchedDriver, _Shedding
from tests.tui.test_ctrl_c import _top_in_a_terminal
from tests.waits import until

#: seconds a stopped dashboard is given to end (it ends within a second or two; a loaded machine is slower)
DEADLINE = 30.0


def _until_it_ends(proc: subprocess.Popen[bytes], master: int) -> bytes:
    """What ``proc`` writes on its terminal until it has ended (and written all), within :data:`DEADLINE`."""
    seen, deadline = b"", time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        if select.select([master], [], [], 0.2)[0]:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: every holder of the pty's other end has closed it (the process ended)
                break
            if not chunk:
                break
            seen += chunk
        elif proc.poll() is not None:
            break
    return seen


def _ended(proc: subprocess.Popen[bytes]) -> int | None:
    """``proc``'s exit code once it has ended, None if it still runs at :data:`DEADLINE`."""
    try:
        return proc.wait(timeout=DEADLINE)
    except subprocess.TimeoutExpired:
        return None


def _kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize(("name", "code"), [("SIGTERM", exitcodes.TERMINATED), ("SIGHUP", exitcodes.HUNG_UP)])
def test_a_signal_ends_top_through_its_own_exit_and_gives_the_terminal_back(
        tmp_path: Path, recorded: dict[str, Any], name: str, code: int) -> None:
    proc, master = _top_in_a_terminal(tmp_path, recorded, controlling=True)
    try:
        proc.send_signal(getattr(signal, name))
        shown = _until_it_ends(proc, master)
        assert _ended(proc) == code, shown[-600:]
        assert b"\x1b[?1049l" in shown, shown[-600:]  # the alternate screen left: the driver stopped
        text = shown.decode("utf-8", "replace")
        assert "Traceback" not in text and "KeyboardInterrupt" not in text, text[-1500:]
        assert f"error: interrupted ({name})" in text, text[-600:]
    finally:
        _kill(proc)
        os.close(master)


@pytest.mark.parametrize(("controlling", "first", "code"), [
    (False, None, exitcodes.HUNG_UP),  # the pty only its stdio: closing it sends no signal at all
    (True, None, exitcodes.HUNG_UP),  # its controlling terminal: the kernel sends SIGHUP
    (False, "SIGTERM", exitcodes.TERMINATED),  # `script` on `timeout`'s SIGTERM: SIGTERM, then the pty closed
], ids=["no signal", "the kernel's SIGHUP", "SIGTERM then closed"])
def test_a_closed_terminal_ends_top(tmp_path: Path, recorded: dict[str, Any], controlling: bool, first: str | None,
                                    code: int) -> None:
    proc, master = _top_in_a_terminal(tmp_path, recorded, controlling=controlling)
    try:
        if first is not None:
            proc.send_signal(getattr(signal, first))
        os.close(master)
        assert _ended(proc) == code, "gamead top outlived its terminal" if proc.poll() is None else proc.returncode
    finally:
        _kill(proc)


class _Dashboard(StopsFromOutside):
    """The stops of the dashboard app on a :class:`WatchedDriver` whose terminal is the slave of a real pty, the
    exit codes Textual's ``exit`` was given recorded (the app itself needs a driver this test cannot hold)."""

    def __init__(self, terminal: int) -> None:
        self._driver = WatchedDriver.__new__(WatchedDriver)
        self._driver._terminals = (terminal,)
        self.codes: list[int] = []

    def exit(self, return_code: int) -> None:
        self.codes.append(return_code)
        self._exit = True


def test_the_first_stop_asked_is_the_one_taken() -> None:
    """Session 55's CI: ``script``'s way (SIGTERM, then its pty closed) exited 129, not 143, when the terminal
    check's turn on the loop came before the SIGTERM's. Here a real SIGTERM reaches the dashboard's handler, the
    pty hangs up, and the check runs before the loop acted on the signal: the SIGTERM's 143 is taken (with the
    handler scheduling the whole stop for the loop's next turn, as before: the check's 129)."""
    master, slave = pty.openpty()
    app, before = _Dashboard(slave), first_signals.STOPPED["signal"]

    async def signal_then_check() -> None:
        signal.raise_signal(signal.SIGTERM)
        os.close(master)  # the pty hung up
        app._look_at_terminal()  # its turn first
        await until(lambda: app.codes, what="the dashboard's exit", timeout=20.0)

    previous = signal.signal(signal.SIGTERM, app.take_signal)
    try:
        asyncio.run(signal_then_check())
        assert app.codes == [exitcodes.TERMINATED]
        assert first_signals.STOPPED["signal"] == signal.SIGTERM
    finally:
        signal.signal(signal.SIGTERM, previous)
        first_signals.STOPPED["signal"], first_signals.PHASE["acting"] = before, None
        os.close(slave)


def test_a_signal_after_the_dashboards_loop_is_not_a_new_stop() -> None:
    """``script``'s way again, the closed terminal's SIGHUP coming once the dashboard's loop has ended on the
    SIGTERM and ``gamead top`` has put the entry point's handlers back (:func:`gamead_cli.commands.top._run`), as it
    gives the terminal back and says its line. Before (signals56): the handlers' record of the stop acted on was
    not the dashboard's, the SIGHUP was a first stop there: a KeyboardInterrupt raised in that unwind, exit 129.
    Now ignored: 143."""
    master, slave = pty.openpty()
    app, before = _Dashboard(slave), {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGHUP)}

    async def signalled() -> None:
        signal.raise_signal(signal.SIGTERM)
        await until(lambda: app.codes, what="the dashboard's exit", timeout=20.0)

    try:
        first_signals.install([])  # the entry point's handlers, which top's own replace while the loop runs
        entry = {sig: signal.signal(sig, app.take_signal) for sig in (signal.SIGTERM, signal.SIGHUP)}
        asyncio.run(signalled())
        for sig, handler in entry.items():
            signal.signal(sig, handler)
        os.close(master)  # the pty hung up: the kernel's SIGHUP
        try:
            os.kill(os.getpid(), signal.SIGHUP)  # its handler runs as this call returns
            raised = False
        except KeyboardInterrupt:
            raised = True
        assert not raised, "the SIGHUP after the loop was taken as a new stop"
        assert app.codes == [exitcodes.TERMINATED] and first_signals.STOPPED["signal"] == signal.SIGTERM
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)
        first_signals.none_yet(command=None, starting=False)
        os.close(slave)


def test_a_signal_while_the_dashboard_quits_on_its_own_leaves_its_exit() -> None:
    """``q`` pressed, then a SIGTERM as the dashboard ends: its own exit (0) stands, no line (the signal's record of
    the stop, :func:`gamead_cli.first_signals.take`, is for a stop the dashboard was not making already)."""
    master, slave = pty.openpty()
    app, before = _Dashboard(slave), signal.getsignal(signal.SIGTERM)

    async def quit_then_signalled() -> None:
        app.exit(return_code=exitcodes.OK)  # q
        signal.raise_signal(signal.SIGTERM)
        await asyncio.sleep(0)  # one turn of the loop: what the handler scheduled (call_soon_threadsafe) has run

    signal.signal(signal.SIGTERM, app.take_signal)
    try:
        asyncio.run(quit_then_signalled())
        assert app.codes == [exitcodes.OK] and first_signals.STOPPED["signal"] is None
    finally:
        signal.signal(signal.SIGTERM, before)
        first_signals.none_yet()
        os.close(master)
        os.close(slave)


def test_writes_to_a_hung_up_terminal_never_block_the_dashboard() -> None:
    """Textual's writer thread writing to a real hung-up pty (its master closed): every write fails ``EIO``. On
    the plain file the thread died of the first failed flush and, its queue full after 30 more writes
    (``MAX_QUEUED_WRITES``), the dashboard's next write blocked its loop for ever — the check for a gone terminal
    included (without :class:`_Shedding`: 60 writes, not done within the 30 s deadline). Through it the writes
    are dropped and the thread stops when asked."""
    master, slave = pty.openpty()
    os.close(master)  # the slave hangs up
    out = os.fdopen(slave, "w", encoding="utf-8")
    writer = WriterThread(_Shedding(out))  # type: ignore[arg-type]
    writer.start()
    done = threading.Event()

    def dashboard() -> None:
        for _ in range(MAX_QUEUED_WRITES * 2):
            writer.write("x" * 10_000)  # more than the file's buffer: each is written (and fails) at once
        writer.stop()
        done.set()

    threading.Thread(target=dashboard, daemon=True).start()
    try:
        assert done.wait(DEADLINE), "the writes to the hung-up terminal blocked"
        assert not writer.is_alive()
    finally:
        try:
            out.close()
        except OSError:  # its last flush: EIO
            pass
