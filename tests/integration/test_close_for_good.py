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
import threading
from collections.abc import Callable

import nats

from gamead_core.embedded import EmbeddedNats
from gamead_core.shutdown import close_connection, close_for_good

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


def test_a_run_whose_client_was_closed_for_good_after_its_server_died_returns_though_the_exit_cancel_is_taken_too(
    fresh_nats: Callable[[], EmbeddedNats],
) -> None:
    """closes52: what a test's own client needs once the test killed its server (tests that do close theirs so).
    The close's cancel is taken as above; so would be ``asyncio.run``'s one cancel at its exit, were the loop still
    running (here its next refused connect waits in the callback again, and ``main`` ends that wait as it returns).
    Before (a plain ``await nc.close()`` here): ``asyncio.run`` had not returned after 60 s, the loop refusing
    connects every 0.1 s (581 after the close); after (``close_for_good``): it returns at once."""
    server = fresh_nats()
    refused_after_close: list[Exception] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        gate, asked, closed = [loop.create_future()], [asyncio.Event()], [False]

        async def error_cb(exc: Exception) -> None:  # awaited by nats-py's reconnection loop after a refused connect
            if isinstance(exc, ConnectionRefusedError):
                if closed[0]:
                    refused_after_close.append(exc)
                if not gate[0].done():
                    asked[0].set()
                    await asyncio.wait_for(gate[0], DEADLINE)

        nc = await nats.connect(server.url, reconnect_time_wait=0.1, max_reconnect_attempts=-1, error_cb=error_cb)
        server.kill()
        await asyncio.wait_for(asked[0].wait(), DEADLINE)
        gate[0].set_result(None)  # the wait ends in the turn the close's cancel comes
        await close_for_good(nc)
        closed[0] = True
        gate[0], asked[0] = loop.create_future(), asyncio.Event()
        reconnecting = nc._reconnection_task  # noqa: SLF001 - the loop under test has no public handle
        if reconnecting is not None and not reconnecting.done():  # runs on: its next try waits in the callback
            await asyncio.wait_for(asked[0].wait(), DEADLINE)
        gate[0].set_result(None)  # that wait ends in the turn the exit's cancel comes

    run = threading.Thread(target=lambda: asyncio.run(main()), daemon=True, name="closes52-run")
    run.start()
    run.join(2 * DEADLINE)
    assert not run.is_alive(), (f"asyncio.run never returned: the closed connection tried the killed server "
                                f"{len(refused_after_close)} times after its close, and tries on")
