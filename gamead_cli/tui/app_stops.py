"""Every way ``gamead top``'s dashboard is stopped from outside ends it through Textual's own exit path, so its
driver stops (the terminal given back, its input thread ended) before the command returns (topsig44, regress44
F8: a ``timeout 8 script -qc "gamead top --record …"`` left an orphan, its pty gone, burning 22 % of a core for
11 min: SIGTERM was raised as a KeyboardInterrupt in the middle of Textual's loop, the driver's stop never ran, and
its non-daemon input thread, reading end-of-file from the hung-up terminal for ever, held the interpreter's exit).

* A signal — Ctrl-C's SIGINT, SIGTERM, SIGHUP — is taken by :meth:`StopsFromOutside.take_signal` (their handler
  while ``gamead_cli.commands.top`` runs the app), which asks :meth:`StopsFromOutside.stop_by` in the app's loop's
  thread: exit code 130 / 143 / 129 (README exit codes); the first stop asked is the one taken.
* A terminal that went away without a signal (a pty master closed by a terminal emulator or ``script`` that
  killed nothing, an SSH session gone where no SIGHUP reached the process): Textual's input thread reads
  end-of-file from it and tells no one, so the app looks every :data:`CHECK_SECONDS` whether the terminals its
  driver reads and writes are still terminals (a hung-up tty answers its ioctls ``EIO``: ``os.isatty`` False) and
  stops as on SIGHUP (129: its terminal hung up).
* Writes to such a terminal fail (``EIO``); Textual's writer thread died of the first one and the next 30 writes
  filled its queue, blocking the app's loop for ever in ``Queue.put``, the check above included. The driver's
  output is :class:`_Shedding`: a write that fails drops the output from then on, never the thread.
"""

from __future__ import annotations

import asyncio
import os
import signal
from types import FrameType
from typing import IO, Any

from textual.drivers.linux_driver import LinuxDriver

from gamead_cli import first_signals
from gamead_cli.interrupt_point import raise_interrupt
from gamead_cli.stops import interrupted_code

#: seconds between two looks at whether the dashboard's terminal is still there (an ioctl each)
CHECK_SECONDS = 0.5


class _Shedding:
    """The driver's output file (``sys.__stderr__``), but a write or flush that fails (``OSError``: ``EIO`` on a
    hung-up terminal) drops all output from then on instead of raising in Textual's writer thread."""

    def __init__(self, file: IO[str]) -> None:
        self._file = file
        self.failed = False  #: a write failed: nothing is written any more

    def write(self, text: str) -> None:
        self._guarded(self._file.write, text)

    def flush(self) -> None:
        self._guarded(self._file.flush)

    def _guarded(self, call: Any, *args: Any) -> None:
        if self.failed:
            return
        try:
            call(*args)
        except (OSError, ValueError):  # ValueError: the file closed under it
            self.failed = True

    def __getattr__(self, name: str) -> Any:  # fileno, isatty, encoding…: the file's own
        return getattr(self._file, name)


class WatchedDriver(LinuxDriver):
    """Textual's Linux driver, its output :class:`_Shedding`; :meth:`terminal_gone` says whether a terminal it
    started on is a terminal no more."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._file = _Shedding(self._file)  # type: ignore[assignment]
        self._terminals: tuple[int, ...] = ()

    def start_application_mode(self) -> None:
        """Textual's, after noting which of its input and output descriptors are terminals now."""
        self._terminals = tuple(fd for fd in {self.fileno, self._file.fileno()} if _is_terminal(fd))
        super().start_application_mode()

    def terminal_gone(self) -> bool:
        """True once a descriptor that was a terminal when the dashboard started is not one any more (hung up:
        its master closed, its session ended)."""
        return any(not _is_terminal(fd) for fd in self._terminals)


def _is_terminal(fd: int) -> bool:
    try:
        return os.isatty(fd)
    except OSError:  # pragma: no cover - a descriptor closed under us: no terminal either
        return False


class StopsFromOutside:
    """Mixin of the dashboard app (``DashboardApp``): the driver it runs on and the stops it takes from outside."""

    def get_driver_class(self) -> Any:
        """:class:`WatchedDriver` where Textual would use its Linux driver; otherwise Textual's choice."""
        chosen = super().get_driver_class()  # type: ignore[misc]
        return WatchedDriver if chosen is LinuxDriver else chosen

    def watch_terminal(self) -> None:
        """Look every :data:`CHECK_SECONDS` whether the terminal went away (call once, on mount)."""
        self.set_interval(CHECK_SECONDS, self._look_at_terminal)  # type: ignore[attr-defined]

    def _look_at_terminal(self) -> None:
        driver = getattr(self, "_driver", None)
        if isinstance(driver, WatchedDriver) and driver.terminal_gone():
            self.stop_by(signal.SIGHUP, signalled=False)

    def take_signal(self, signum: int, _frame: FrameType | None) -> None:
        """The handler of SIGINT, SIGTERM and SIGHUP while ``gamead top`` runs (``signal.signal``): on the
        dashboard's loop, :meth:`stop_by`; the same signal again while it stops takes its default action (the
        process ends by it at once, as :mod:`gamead_cli.first_signals` does), the others are ignored meanwhile,
        the loop's or not (:func:`gamead_cli.first_signals.take`: before, one after the loop's end or before its
        start was raised and said, a SIGHUP after a SIGTERM: 129). Before or after the loop (no driver runs): an
        ordinary interrupt, a :class:`KeyboardInterrupt` (:func:`~gamead_cli.interrupt_point.raise_interrupt`: put off
        past a step that must not be cut, as the putting back of these handlers). On the loop of a dashboard
        quitting on its own (``q``), none: its exit stands."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            looping = False
        else:
            looping = True
            if getattr(self, "_exit", False) and getattr(self, "_stop_asked", None) is None:
                return
        taken = first_signals.take(signum)
        if taken == "again":
            first_signals.end_by(signum)
        if taken != "first":
            return
        if not looping:  # put off past a step that must not be cut (the putting back of these handlers)
            raise_interrupt(_frame)
            return
        self.stop_by(signum)

    def stop_by(self, signum: int, *, signalled: bool = True) -> None:
        """End the dashboard as ``signum`` (SIGINT, SIGTERM, SIGHUP) asks: through Textual's exit, exit code
        130 / 143 / 129 (:func:`gamead_cli.stops.interrupted_code`), the signal remembered for the command's
        line (``interrupted (SIGTERM)``; none for Ctrl-C). The first stop asked is the one taken: it is recorded
        at once (:func:`gamead_cli.first_signals.take`, by :meth:`take_signal` for a signal; here for one no signal
        asked, ``signalled`` False: the Ctrl-C key, the terminal gone) and acted on at the loop's next turn, so a
        later one changes nothing whichever reaches the loop first (session 55's CI: ``script``'s SIGTERM, its pty
        closed right after, and the terminal check's turn came before the signal's: exit 129, not 143). Safe in a
        signal handler run on the loop's thread: it only records and schedules (``call_soon_threadsafe``)."""
        if getattr(self, "_stop_asked", None) is not None or getattr(self, "_exit", False):
            return
        if not signalled and first_signals.take(signum, signalled=False) != "first":
            return  # a signal asked a stop first: its own is acted on
        self._stop_asked = signum
        asyncio.get_running_loop().call_soon_threadsafe(self._end_as_asked)

    def _end_as_asked(self) -> None:
        self.exit(return_code=interrupted_code())  # type: ignore[attr-defined]
