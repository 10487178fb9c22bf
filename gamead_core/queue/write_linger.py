"""The API's writes to NATS at a steady flow: each waits up to ``api.write_linger_ms`` for others to join it in one
socket write (issue 14, all roles' CPU per ad at 1,000 ads/s).

A ``POST /ads`` makes two JetStream writes, one after the other (its record, then its message: "a 202 is never
lost", :mod:`gamead_core.intake`). At a steady rate the requests come one at a time, so each write went out in a
socket write of its own, and nats-server read each alone and answered each alone, on cores that went cold in
between, as the worker's pulls did before :mod:`gamead_core.worker.linger`. With a linger, the first write put in
the connection's buffer (:func:`gamead_core.queue.hpub.send`) wakes nats-py's flusher only ``linger`` later: the
writes of the requests arriving meanwhile go with it, nats-server reads them at once and their acks come back
together (Kafka's producer ``linger.ms``). Measured in-process (a steady 1,000 ``POST /ads``/s through gamead's app
on a real nats-server, 6 alternating rounds of 4 s, session 39): the API and nats-server together 344 → 277 µs of
CPU per request at 2 ms (lower in 6 of 6 rounds), 356 → 273 µs at 3 ms; 1 ms gained nothing.

The bounds are the worker linger's (:class:`~gamead_core.worker.linger.Linger`, the same decision): a write waits
only while the connection's recent write rate says another is expected within the linger (rate × linger ≥ 1; a
silence of 10 lingers forgets the flow), so a lone submit is sent at once; and no write waits more than the linger
(the wait ends ``linger`` after the first write left waiting), nor once :data:`BATCH` writes wait (Kafka's
``batch.size``): at a high rate the writes batch by themselves within a turn of the event loop, and a full linger
there only lengthened every request (64 clients in a closed loop: 8,500 → 6,400 ``POST /ads``/s at the same CPU
per request). A submit thus waits at most two lingers longer at a steady flow. Anything else that wakes the flusher (nats-py's own publishes, a flush, a PING) sends what waits
with it. ``linger`` 0 (``api.write_linger_ms: 0``) leaves the connection as nats-py has it.
"""

from __future__ import annotations

import asyncio

from nats.aio.client import Client as NATS

from gamead_core.worker.linger import Linger

__all__ = ["BATCH", "WriteLinger", "kick_flusher", "linger_writes"]

#: writes waiting that end a linger at once: at 1,000 submits/s (2,000 writes/s) a 2 ms linger gathers ~4
BATCH = 8

#: the attribute of a nats-py client that holds its :class:`WriteLinger` (set by :func:`linger_writes`)
ATTR = "_gamead_write_linger"


def kick_flusher(nc: NATS, loop: asyncio.AbstractEventLoop) -> None:
    """Wake ``nc``'s flusher (nats-py's ``_flush_pending`` does the same), unless it is woken already."""
    queue = nc._flush_queue  # noqa: SLF001 - nats-py's; the one of the connection now (a reconnect makes another)
    if queue is not None and queue.empty():
        queue.put_nowait(loop.create_future())


class WriteLinger:
    """The linger of one connection's writes (module doc). ``linger``: seconds (> 0)."""

    __slots__ = ("_decide", "_timer", "_held")

    def __init__(self, linger: float) -> None:
        self._decide = Linger(linger)
        self._timer: asyncio.TimerHandle | None = None  #: the flusher's wake-up, while writes wait for it
        self._held = 0  #: writes waiting for it

    @property
    def waiting(self) -> bool:
        """True while written bytes wait for the linger's end."""
        return self._timer is not None

    def wrote(self, nc: NATS, loop: asyncio.AbstractEventLoop) -> None:
        """A write was put in ``nc``'s outgoing buffer: wake its flusher now, or when the linger ends (module doc)."""
        if self._timer is None:
            now = loop.time()
            wait = self._decide.after_wake(now)
            if wait > 0:
                self._timer, self._held = loop.call_at(now + wait, self._end, nc, loop), 0
            else:
                kick_flusher(nc, loop)
        self._decide.took(1)
        if self._timer is not None:
            self._held += 1
            if self._held >= BATCH:  # a batch's worth waits: no need to wait for more
                self._timer.cancel()
                self._end(nc, loop)

    def _end(self, nc: NATS, loop: asyncio.AbstractEventLoop) -> None:
        self._timer, self._held = None, 0
        kick_flusher(nc, loop)


def linger_writes(nc: NATS, linger_ms: float) -> NATS:
    """Give ``nc`` a :class:`WriteLinger` of ``linger_ms`` milliseconds (``api.write_linger_ms``; 0: none), used by
    :func:`gamead_core.queue.hpub.send` for every write it puts in the buffer. Returns ``nc``."""
    setattr(nc, ATTR, WriteLinger(linger_ms / 1000) if linger_ms > 0 else None)
    return nc
