"""The write timeout of ``gamead serve`` (``api.write_timeout``): an answer whose bytes make no progress is aborted.

Why: an answer is handed to the transport whole (a ``GET /ads?limit=500`` of 3.3 MB in one write); what the
kernel's send queue does not take stays in the transport's buffer, and the descriptor stays open until every byte
is sent. A client that asks and never reads held its descriptor and ~2.8 MB of kernel socket buffer for ever:
``api.read_timeout`` (the request was whole), ``api.keep_alive_timeout`` (its close waits for the buffer) and
``api.max_connections`` (a connection closed for room left the count, not the process) never reclaimed it; 64 of
them at an open-files limit of 80 froze ``/healthz`` for as long as they stayed (attack34a F1).

Progress is what the client acknowledged, read on the socket: the bytes handed to the transport less those still
in its buffer and in the kernel's send queue (``TIOCOUTQ``: sent but not acknowledged, or not sent yet). A reader
with a 4 KB receive window that reads slowly advances it at every read, however full the queues stay; the
transport's own buffer alone moves only when the kernel's queue has room for a third of itself again, which a
slow reader can take minutes to make.

Only time the server's loop runs counts (as for the read deadline, review28 P1, and the sampler's renewal,
:mod:`gamead_core.stats.renewal`): the time between two checks counts at most :data:`RUNNING_SLACK` check
intervals, so an API that stood still (a blocked loop, SIGSTOP, a suspended VM) does not abort, when it runs
again, the clients it did not write to meanwhile. The decision (:class:`WriteWatch`) is pure; reading the socket
is :func:`delivered`.
"""

from __future__ import annotations

import fcntl
import logging
import struct
import termios
from collections.abc import Sequence
from typing import Any

from gamead_core.log_throttle import Throttle, say

log = logging.getLogger(__name__)

#: one write-timeout line per kind a second at most (each connection's own; many at once say how many more)
_said = Throttle(every=1.0)

#: a check later than this many check intervals after the one before: the loop stood still; it counts this many
RUNNING_SLACK = 2.0


def running_time(gap: float, interval: float) -> float:
    """Seconds of ``gap`` (loop time between two checks, s) that count as the server's own running time: at most
    :data:`RUNNING_SLACK` × ``interval`` (the checks' period, s). Pure."""
    return min(max(gap, 0.0), RUNNING_SLACK * interval)


class WriteWatch:
    """The progress of one connection's buffered answer: the bytes its client acknowledged at the last check and
    the running seconds since they last grew."""

    __slots__ = ("acked", "stalled")

    def __init__(self, acked: int) -> None:
        self.acked = acked  #: bytes the client acknowledged at the last check
        self.stalled = 0.0  #: running seconds since they last grew

    def observe(self, acked: int, ran: float) -> float:
        """One check: ``acked`` bytes acknowledged now, ``ran`` running seconds since the last check
        (:func:`running_time`); returns the seconds without progress (0 when ``acked`` grew). Pure."""
        if acked > self.acked:
            self.acked, self.stalled = acked, 0.0
        else:
            self.stalled += ran
        return self.stalled

    def timed_out(self, write_timeout: float) -> bool:
        """Whether no progress was made for ``write_timeout`` running seconds (``api.write_timeout``). Pure."""
        return self.stalled >= write_timeout


def to_cut(writers: Sequence[tuple[float, int]], budget: int) -> list[int]:
    """Which of ``writers`` (``(stalled seconds, bytes buffered)`` each, every answer in a transport's buffer) to
    cut so that the bytes they buffer all together come to at most ``budget`` (``api.max_unsent_bytes``): the
    stalled ones, stalled longest first; one making progress is never cut. Indices into ``writers``. Pure."""
    total = sum(size for _, size in writers)
    cut: list[int] = []
    for i in sorted((i for i, (stalled, _) in enumerate(writers) if stalled > 0), key=lambda i: -writers[i][0]):
        if total <= budget:
            break
        cut.append(i)
        total -= writers[i][1]
    return cut


def kernel_unsent(fd: int) -> int:
    """Bytes of socket ``fd`` the kernel has not yet had acknowledged (``TIOCOUTQ``, Linux: its send queue)."""
    return int(struct.unpack("i", fcntl.ioctl(fd, termios.TIOCOUTQ, b"\0" * 4))[0])


def kernel_unread(fd: int) -> int:
    """Bytes socket ``fd`` received that its reader has not read yet (``FIONREAD``, Linux: its receive queue)."""
    return int(struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0" * 4))[0])


def buffered(transport: Any) -> int:
    """Bytes of an answer in ``transport``'s buffer: written, not yet taken by the kernel; not the bytes of this loop
    turn a :class:`~gamead_core.api.turn_writes.OneWritePerTurn` keeps (sent in the next callback: a small answer
    just completed is not being written to a client that does not read)."""
    kept = getattr(transport, "kept_size", None)
    return int(transport.get_write_buffer_size() - (kept() if kept is not None else 0))


def delivered(transport: Any) -> tuple[int, int] | None:
    """``(acknowledged, left)``: bytes of ``transport`` (a :class:`~gamead_core.api.turn_writes.OneWritePerTurn`)
    its client acknowledged so far, and bytes not yet acknowledged (the transport's buffer and the kernel's send
    queue; without ``TIOCOUTQ``, not Linux, the transport's buffer alone); None for another transport."""
    sent = getattr(transport, "sent", None)
    if sent is None:
        return None
    queued = 0
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:
            queued = kernel_unsent(sock.fileno())
        except (OSError, AttributeError, ValueError):  # gone meanwhile, or not Linux
            pass
    left = transport.get_write_buffer_size() + queued
    return sent + transport.kept_size() - left, left


class TimedWrites:
    """Base of :class:`~gamead_core.api.http_limits.BoundedHttpToolsProtocol` (whose ``limits``, ``client`` and
    ``_cut`` it uses): the write timeout, checked by the sweep (:mod:`gamead_core.api.http_sweep`)."""

    limits: Any
    transport: Any
    loop: Any
    client: tuple[str, int] | None
    _watch: WriteWatch | None = None  #: while the transport holds bytes of an answer: their progress
    _stopping = False  #: the server stops: an answer that stalls is cut at once, not after ``api.write_timeout``

    def write_checked(self, ran: float) -> None:
        """The sweep's check of an answer still buffered (``ran``: the server's running seconds since the last one):
        aborted, with a reset, after ``api.write_timeout`` running seconds in which its client acknowledged no byte
        (:mod:`gamead_core.api.write_watch`; attack34a F1); :meth:`_writing_changed` is told of each change."""
        progress = delivered(self.transport)
        if progress is None or not progress[1] or not buffered(self.transport):
            if self._watch is not None:  # all handed to the kernel (what it still holds goes with a close)
                self._watch = None
                self._writing_changed()
            return
        acked, left = progress
        if self._watch is None:
            self._watch = WriteWatch(acked)
            return self._writing_changed()
        was_stalled = self._watch.stalled > 0
        if self._watch.observe(acked, ran) > 0 and self._watch.timed_out(self.limits.write_timeout):
            peer = self._peer()
            say(_said, "write_timeout", self.loop.time(), log, logging.WARNING, "aborted an answer its client did not "
                "read for %gs (api.write_timeout): %s, %d bytes left", self.limits.write_timeout, peer, left,
                extra={"event": "write_timeout", "peer": peer, "bytes_left": left})
            self._cut()  # type: ignore[attr-defined]
        elif self._stopping and self._watch.stalled:
            self._cut()  # type: ignore[attr-defined]
        elif (self._watch.stalled > 0) != was_stalled:
            self._writing_changed()

    def cut_for_memory(self, total: int) -> None:
        """Cut this stalled answer: the answers buffered by the server come to ``total`` bytes, over
        ``api.max_unsent_bytes`` (the sweep's :func:`to_cut`)."""
        peer, left = self._peer(), buffered(self.transport)
        say(_said, "write_budget", self.loop.time(), log, logging.WARNING, "aborted an answer its client stopped "
            "reading: the API buffers %d bytes of answers, over api.max_unsent_bytes (%d): %s, %d bytes left", total,
            self.limits.max_unsent, peer, left, extra={"event": "write_budget", "peer": peer, "bytes_left": left})
        self._cut()  # type: ignore[attr-defined]

    def writing(self) -> bool:
        """Whether bytes of an answer wait in the transport (:func:`buffered`); if so they are watched from now on
        (the sweep then tells :meth:`_writing_changed` when they stall, move or are all sent)."""
        if not buffered(self.transport):
            return False
        if self._watch is None and (progress := delivered(self.transport)) is not None:
            self._watch = WriteWatch(progress[0])
        return True

    def _writing_changed(self) -> None:
        """The answer's write started, stalled, moved again or ended (``_watch``): for the connection bound."""

    def _peer(self) -> str:
        client = self.client
        return f"{client[0]}:{client[1]}" if client else "unknown"

