"""``gamead up`` stops when its terminal goes away, as a foreground supervisor does (Celery, Sidekiq, foreman,
honcho): the terminal emulator closed, its tmux pane killed, the ``script`` around it ended, its SSH session gone
(hangup57). Before, only the kernel's SIGHUP stopped it, and the kernel sends that to the session's leader and its
foreground job alone: ``gamead up`` under a wrapper that ignores SIGHUP (``gamead up`` then finds it ignored, as
under ``nohup``), in a background job (``gamead up &``) or below a session leader that outlives the terminal went
on running with its terminal gone, the whole stack orphaned.

The terminal watched is the one on stdin (:func:`watched`): none with ``--no-tty-check``, or with stdin not a
terminal (``nohup``, which takes a terminal off stdin; a service; ``< /dev/null``): the stack then outlives the
terminal, as before. How, with no clock (session 56 took out the timers that woke an idle stack): a daemon thread
waits in ``epoll_wait``, with no timeout, on stdin registered for no event at all. The kernel still reports
``EPOLLHUP`` once the terminal hangs up (its pty's master closed, a ``vhangup``), and nothing else: a key typed
wakes nothing and nothing is read from the terminal. :meth:`TerminalWatch.close` ends the thread (an eventfd
written)."""

from __future__ import annotations

import errno
import os
import select
import sys
import termios
import threading
from collections.abc import Callable

from gamead_cli.commands.up_console import say
from gamead_cli.commands.up_signals import hang_up, stop_requested

#: the descriptor watched: stdin's
STDIN = 0


def watched(check: bool) -> int | None:
    """The descriptor whose terminal ``gamead up`` watches: stdin's (0) when ``check`` (``--tty-check``, the
    default) and stdin is a terminal now or one that hung up already (:func:`hung_up`: its watch reports it at
    once), else None (no watch)."""
    if not check or sys.stdin is None:
        return None
    try:
        return STDIN if os.isatty(STDIN) or hung_up(STDIN) else None
    except OSError:  # pragma: no cover - stdin closed (`<&-`): no terminal
        return None


def hung_up(fd: int) -> bool:
    """Whether ``fd`` is a terminal that hung up already (closed in the second ``gamead up`` took to start): to
    ``isatty`` it is no terminal, as its attributes are refused with EIO (a file, a pipe or /dev/null: ENOTTY)."""
    try:
        termios.tcgetattr(fd)
    except termios.error as exc:
        return bool(exc.args) and exc.args[0] == errno.EIO
    return False


def hangup_words(hangup_ignored: bool, watching: bool, pid: int) -> str | None:
    """What ``gamead up`` says of SIGHUP and its terminal as its start ends (``pid``: its own), None for nothing
    to say: SIGHUP came ignored (``hangup_ignored``: ``nohup``, or a wrapper ignoring it) and no terminal is
    watched (``watching`` False): the stack outlives the terminal; ignored but the terminal on stdin watched: it
    stops with the terminal all the same, and how to keep it."""
    if not hangup_ignored:
        return None
    if not watching:
        return ("SIGHUP was ignored when gamead up started (nohup?): closing the terminal leaves the stack running; "
                f"stop it with Ctrl-C or `kill {pid}` (SIGTERM)")
    return ("SIGHUP was ignored when gamead up started, but its stdin is a terminal: closing that terminal stops "
            "the stack all the same; to keep it running, start it with `nohup`, stdin not a terminal, or "
            "--no-tty-check")


def terminal_gone() -> None:
    """The terminal on stdin hung up: say so (a line a log file on stderr keeps; a hung-up terminal drops it) and
    ask the stop a SIGHUP asks (:func:`.up_signals.hang_up`), unless a stop has begun (the kernel's own SIGHUP,
    a Ctrl-C or SIGTERM before): the workers drain, then the API and NATS go; exit 0, as on SIGHUP."""
    if stop_requested.is_set():
        return
    say("[yellow]![/] the terminal on gamead up's stdin hung up (closed): stopping the stack as on SIGHUP")
    hang_up()


class TerminalWatch:
    """The watch of one terminal: :meth:`start` it (or not), :meth:`close` it once the stack stops."""

    def __init__(self, on_gone: Callable[[], None] = terminal_gone) -> None:
        self._on_gone = on_gone
        self._poll: select.epoll | None = None  #: its epoll and eventfd: closed with the watch
        self._wake = -1
        self._thread: threading.Thread | None = None

    @property
    def watching(self) -> bool:
        """Whether a terminal is watched (:meth:`start` found one)."""
        return self._thread is not None

    def start(self, check: bool) -> bool:
        """Watch stdin's terminal (:func:`watched`: ``check`` False, or no terminal: nothing); from then on,
        once it hangs up, ``on_gone()`` is called once, from the watch's own thread. True if a terminal is
        watched. A descriptor the kernel cannot watch (``OSError``) is not watched."""
        fd = watched(check)
        if fd is None:
            return False
        try:  # no descriptor left (EMFILE) or a descriptor epoll refuses: not watched, the start goes on (rcB)
            self._poll = select.epoll()
            self._wake = os.eventfd(0, os.EFD_CLOEXEC)
            self._poll.register(fd, 0)  # no event asked: EPOLLHUP and EPOLLERR are reported all the same
            self._poll.register(self._wake, select.EPOLLIN)
        except OSError:
            self.close()
            return False
        self._thread = threading.Thread(target=self._watch, args=(self._poll, fd, self._wake),
                                        name="gamead-up-terminal-watch", daemon=True)
        self._thread.start()
        return True

    def _watch(self, poll: select.epoll, fd: int, wake: int) -> None:
        while True:
            ready = {ready_fd for ready_fd, _ in poll.poll()}
            if wake in ready:
                return
            if fd in ready:
                self._on_gone()
                return

    def close(self) -> None:
        """End the watch (nothing is called from then on) and give its descriptors back; nothing if none."""
        if self._thread is not None:
            os.eventfd_write(self._wake, 1)
            self._thread.join(timeout=10)
            if self._thread.is_alive():  # pragma: no cover - its ``on_gone`` stuck: its descriptors left open
                return
            self._thread = None
        if self._poll is not None:
            self._poll.close()
        if self._wake >= 0:
            os.close(self._wake)
        self._poll, self._wake = None, -1

