"""The read-deadline sweep of :class:`gamead_core.api.http_limits.BoundedHttpToolsProtocol`: one repeating check per
server of every connection's ``_deadline`` (a timer per request costs more on uvloop than all the rest of the
bounds), calling its ``read_timed_out()`` once the deadline has passed."""

from __future__ import annotations

import asyncio
from typing import Any


def sweep_interval(read_timeout: float) -> float:
    """Seconds between two sweeps for overdue requests: a quarter of the timeout, at most one second."""
    return min(1.0, read_timeout / 4)


def start_sweeper(loop: asyncio.AbstractEventLoop, server_state: Any, read_timeout: float) -> None:
    """One repeating check per server of every connection's read deadline; stops when no connection is left
    and starts again with the next one."""
    if getattr(server_state, "_gamead_sweeping", False):
        return
    server_state._gamead_sweeping = True
    interval = sweep_interval(read_timeout)

    def sweep() -> None:
        now = loop.time()
        for conn in list(server_state.connections):
            deadline = getattr(conn, "_deadline", None)
            if deadline is not None and now >= deadline:
                conn.read_timed_out()
        if server_state.connections:
            loop.call_later(interval, sweep)
        else:
            server_state._gamead_sweeping = False

    loop.call_later(interval, sweep)
