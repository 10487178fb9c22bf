"""The kernel telling ``gamead up`` that a child's log grew (idle56): its supervisor looked at every log's size once
a second (:data:`~gamead_core.log_bound.CHECK_EVERY`), idle or not (issue 14 item 1).

:class:`LogGrowth` watches the logs' directories with inotify (``IN_MODIFY``: a file in it written or truncated),
its descriptor read by the event loop; a growth sets :attr:`LogGrowth.grown` and calls ``on_growth`` (the
supervisor's :meth:`~gamead_core.child_exits.ChildExits.poke`), and :meth:`LogGrowth.due` then says when the next
look is (one :data:`~gamead_core.log_bound.CHECK_EVERY` after the last, as before: a log still cannot outgrow its
bound by more than a second of writing). Until that look the descriptor is not read, so a child writing all the
time wakes the supervisor once a second at most; one that writes nothing, never. Where inotify is missing or
fails (not Linux, no watch left: ``fs.inotify.max_user_watches``) the logs are looked at every second, as before.
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import logging
import os
import struct
from collections.abc import Callable, Iterable
from pathlib import Path

from gamead_core.libc import libc_function
from gamead_core.log_bound import CHECK_EVERY

log = logging.getLogger(__name__)

IN_MODIFY = 0x2  #: <sys/inotify.h>: a file in the watched directory was written or truncated
IN_DELETE_SELF, IN_MOVE_SELF = 0x400, 0x800  #: <sys/inotify.h>: the watched directory itself deleted, moved
IN_IGNORED = 0x8000  #: <sys/inotify.h>: the watch was removed (its directory deleted, or inotify_rm_watch)
_GONE = IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED  #: the directory at the watched path is not the one watched
_EVENT = struct.Struct("iIII")  #: struct inotify_event's head: wd, mask, cookie, len (then len bytes of name)
IN_NONBLOCK, IN_CLOEXEC = os.O_NONBLOCK, os.O_CLOEXEC  #: inotify_init1's flags are the open(2) ones on Linux


class LogGrowth:
    """Whether a log in the watched directories grew since the supervisor last looked at their sizes."""

    def __init__(self, on_growth: Callable[[], None]) -> None:
        self.on_growth = on_growth
        self.grown = True  #: a log grew since the last look (at first: unknown, so look)
        self._fd: int | None = None
        self._dirs: dict[Path, int] = {}  # watched directory -> its watch descriptor
        self._missing = False  # a log's directory is not there to watch: look every CHECK_EVERY s meanwhile
        self._armed = False
        self.fallback = False  #: no inotify: look every CHECK_EVERY s
        init = libc_function("inotify_init1")
        self._add, self._rm = libc_function("inotify_add_watch"), libc_function("inotify_rm_watch")
        if init is None or self._add is None or self._rm is None:
            self.fallback = True
            return
        self._add.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        fd = init(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            self.fallback = True
            log.info("inotify unavailable (%s): the logs' sizes are looked at every %g s",
                     os.strerror(ctypes.get_errno()), CHECK_EVERY)
            return
        self._fd = fd

    def watch(self, logs: Iterable[Path]) -> None:
        """Watch the directories of ``logs`` (those not watched yet, or again: one deleted or moved since). A new
        watch means a look (a log written before it). A directory missing now is tried again at the next call,
        the logs looked at every :data:`CHECK_EVERY` s meanwhile; one that cannot be watched otherwise turns
        :attr:`fallback` on (said in the log, at INFO)."""
        if self._fd is None:
            return
        self._missing = False
        for folder in {p.parent for p in logs} - set(self._dirs):
            wd = self._add(self._fd, os.fsencode(folder), IN_MODIFY | IN_DELETE_SELF | IN_MOVE_SELF)
            if wd < 0 and ctypes.get_errno() == errno.ENOENT:  # deleted: a child's (re)start makes it again
                self._missing = True
                continue
            if wd < 0:
                log.info("cannot watch %s (%s): the logs' sizes are looked at every %g s", folder,
                         os.strerror(ctypes.get_errno()), CHECK_EVERY)
                self.close()
                self.fallback = True
                return
            self._dirs[folder] = wd
            self.grown = True

    def looked(self) -> None:
        """The supervisor looked at the logs' sizes just now: wait for the next growth (from the loop's thread)."""
        if self._fd is None:
            return
        self.grown = False
        if not self._armed:
            asyncio.get_running_loop().add_reader(self._fd, self._grew)
            self._armed = True

    def _grew(self) -> None:
        assert self._fd is not None
        try:
            while chunk := os.read(self._fd, 65536):  # whole events only, each read
                self._forget_gone(chunk)
        except BlockingIOError:
            pass
        asyncio.get_running_loop().remove_reader(self._fd)  # read again after the next look, not before
        self._armed = False
        self.grown = True
        self.on_growth()

    def _forget_gone(self, events: bytes) -> None:
        """Forget the directories whose watch ``events`` (inotify_event records) say is no longer on their path:
        :meth:`watch` watches the path again."""
        at = 0
        while at + _EVENT.size <= len(events):
            wd, mask, _, size = _EVENT.unpack_from(events, at)
            at += _EVENT.size + size
            if mask & _GONE and wd >= 0:
                for folder in [f for f, w in self._dirs.items() if w == wd]:
                    del self._dirs[folder]
                    if mask & IN_MOVE_SELF and self._fd is not None:  # still watched where it went: not ours
                        self._rm(self._fd, wd)

    def due(self, checked_at: float) -> float | None:
        """When (monotonic s) the next look at the logs' sizes is due, after the one at ``checked_at``: one
        :data:`~gamead_core.log_bound.CHECK_EVERY` later once a log grew (always in :attr:`fallback` or while a
        log's directory is missing), else None."""
        return checked_at + CHECK_EVERY if self.grown or self.fallback or self._missing else None

    def close(self) -> None:
        """Stop watching (from the loop's thread)."""
        if self._fd is not None:
            if self._armed:
                asyncio.get_running_loop().remove_reader(self._fd)
            os.close(self._fd)
            self._fd, self._armed = None, False
