"""A step that must be whole or undone, never cut half-way by a stop signal (left39b item 4: ``DataDir.lock``, a
SIGTERM between the lock file's creation and its ``flock`` left the data dir it had just made behind).

:func:`held` keeps SIGINT, SIGTERM and SIGHUP back for the block — in Python's handlers, not the thread's signal mask
(the kernel gives a signal masked in the main thread to another thread, and Python still raises it in the main
thread) — and says which came; the caller undoes what the block did, then :meth:`Held.deliver` acts on the first
one as the handlers before the block would have (a :class:`KeyboardInterrupt` raised, the default action taken). A
signal ignored before the block (``nohup``) stays ignored. On the main thread only (elsewhere Python sets no
handler: a plain block, nothing held). Only the standard library is imported here."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

#: the signals held back: Ctrl-C, a supervisor's stop, a closed terminal
HELD = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Held:
    """What came during a :func:`held` block: :attr:`came` (signal numbers, in order) and the handlers before it."""

    def __init__(self) -> None:
        self.came: list[int] = []
        self.before: dict[int, Any] = {}

    def deliver(self) -> None:
        """Act on the first signal that came (after the block: its handlers are back), as its handler before the
        block would have: a Python handler is called (Ctrl-C's raises :class:`KeyboardInterrupt`), the default
        action taken by sending the signal again. Nothing when none came."""
        if not self.came:
            return
        signum, self.came = self.came[0], []
        handler = self.before.get(signum, signal.SIG_DFL)
        if callable(handler):
            handler(signum, None)
        elif handler == signal.SIG_DFL:
            os.kill(os.getpid(), signum)


@contextmanager
def held() -> Iterator[Held]:
    """Hold :data:`HELD` back for the block (module doc); the :class:`Held` yielded says which came. The handlers
    are put back on leaving, whatever the block raised; nothing is delivered: the caller calls
    :meth:`Held.deliver` once it has undone what it must."""
    hold = Held()
    if threading.current_thread() is threading.main_thread():
        for sig in HELD:
            before = signal.getsignal(sig)
            if before is not None and before != signal.SIG_IGN:  # None: a handler set outside Python, kept
                hold.before[sig] = signal.signal(sig, lambda signum, _frame: hold.came.append(signum))
    try:
        yield hold
    finally:
        for sig, handler in hold.before.items():
            signal.signal(sig, handler)
