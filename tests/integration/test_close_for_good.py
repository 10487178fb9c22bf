"""A NATS connection closed while its server is gone stops trying to reach it (flakes51B).

A fresh clone's suite at load 12-19 (test_clean_stop_nats_back's cut stop): nats-server killed, the connection
closed, then ``asyncio.run``'s exit hung until pytest-timeout's 120 s while nats-py's reconnection loop logged 1,140
refused connects. nats-py's close cancels that loop once, and Python 3.11's ``asyncio.wait_for`` (nats-py's connect
waits in one) returns what the await it wraps gave when it ended as the cancel came, taking the cancel: the loop
tried on, every ``reconnect_time_wait``, for ever, and the exit's one cancel was taken the same way. A process's
stop (:func:`gamead_core.shutdown.close_connection`) would so hang until its stop bound cut it (exit 1).

Here the race is forced by its order: nats-py's error callback, which its loop awaits after a refused connect, waits
in a ``wait_for`` whose await ends in the turn the close's cancel comes (as in test_jobs_stop_taken_cancel). Real
nats-server, killed. Before (one cancel): the loop still ran after the close; after: it ended with the close."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import nats

from gamead_core.embedded import EmbeddedNats
from gamead_core.shutdown import close_connection

DEADLINE = 30.0  #: seconds any one wait may take


def test_a_connection_closed_while_nats_is_gone_stops_reconnecting_though_its_loop_took_the_cancel(
    fresh_nats: Callable[[], EmbeddedNats],
) -> None:
    server = fresh_nats()

    async def main() -> tuple[bool, bool]:
        answer: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        asked = asyncio.Event()

        async def error_cb(exc: Exception) -> None:  # awaited by nats-py's reconnection loop after a refused connect
            if isinstance(exc, ConnectionRefusedError) and not answer.done():
                asked.set()
                await asyncio.wait_for(answer, DEADLINE)

        nc = await nats.connect(server.url, reconnect_time_wait=0.1, max_reconnect_attempts=-1, error_cb=error_cb)
        server.kill()
        await asyncio.wait_for(asked.wait(), DEADLINE)
        reconnecting = nc._reconnection_task  # noqa: SLF001 - the loop under test has no public handle
        answer.set_result(None)  # the wait ends in the turn the close's cancel comes
        await close_connection(nc)
        return nc.is_closed, reconnecting is not None and reconnecting.done()

    closed, stopped = asyncio.run(main())
    assert closed
    assert stopped, "the closed connection still tries to reach the gone server (its reconnection loop runs on)"
