"""The sweep of :class:`gamead_core.api.http_limits.BoundedHttpToolsProtocol`: one repeating check per server of
every connection (a timer per request costs more on uvloop than all the rest of the bounds): its read deadline
(``_deadline``: ``read_timed_out()`` once passed) and, while its transport holds bytes of an answer, its write
progress (``write_checked(ran)``, with the server's running seconds since the last sweep:
:mod:`gamead_core.api.write_watch`)."""

from __future__ import annotations

import asyncio
from typing import Any

from gamead_core.api.write_watch import buffered, running_time, to_cut


def sweep_interval(read_timeout: float, write_timeout: float | None = None) -> float:
    """Seconds between two sweeps: a quarter of the shorter timeout, at most one second."""
    return min(1.0, read_timeout / 4, (write_timeout or read_timeout) / 4)


def start_sweeper(loop: asyncio.AbstractEventLoop, server_state: Any, read_timeout: float,
                  write_timeout: float | None = None, max_unsent: int = 0) -> None:
    """One repeating check per server of every connection's read deadline and write progress, and of the bytes of
    answers all its transports buffer together (at most ``max_unsent``, 0: unbounded; the stalled ones, longest
    first, are cut past it: :func:`~gamead_core.api.write_watch.to_cut`); stops when no connection is left and
    starts again with the next one."""
    if getattr(server_state, "_gamead_sweeping", False):
        return
    server_state._gamead_sweeping = True
    interval = sweep_interval(read_timeout, write_timeout)
    last = loop.time()

    def sweep() -> None:
        nonlocal last
        now = loop.time()
        ran, last = running_time(now - last, interval), now
        writers: list[Any] = []
        for conn in list(server_state.connections):
            deadline = getattr(conn, "_deadline", None)
            if deadline is not None and now >= deadline:
                conn.read_timed_out()
            if getattr(conn, "_watch", None) is not None or conn.transport.get_write_buffer_size():  # one call
                conn.write_checked(ran)
                if conn._watch is not None:  # closing ones too: a close waits for their bytes
                    writers.append(conn)
        if max_unsent and writers:
            sizes = [(conn._watch.stalled, buffered(conn.transport)) for conn in writers]
            total = sum(size for _, size in sizes)
            for i in to_cut(sizes, max_unsent) if total > max_unsent else ():
                writers[i].cut_for_memory(total)
        if server_state.connections:
            loop.call_later(interval, sweep)
        else:
            server_state._gamead_sweeping = False

    loop.call_later(interval, sweep)
