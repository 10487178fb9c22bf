"""closes52: a connect to a NATS that is gone ends when it is given up, though nats-py's connect loop took a cancel.

gamead connects with ``max_reconnect_attempts=-1`` (a NATS restart must not kill a process), so nats-py's first
connect retries a refused server for ever, and Python 3.11's ``asyncio.wait_for`` inside it (each attempt's) takes
a cancel that lands as the attempt is refused. ``asyncio.wait_for(nats.connect(...))`` (gamead_core.queue.connection
until this change) then waited on that connect for ever: a start meant to say "cannot connect to NATS" after
``retry_for`` hung while NATS was away. :func:`gamead_core.stop_bound.waited` cancels it again until it ends.

The take is forced by its order, as in tests/integration/test_close_for_good.py: the error callback nats-py awaits
after a refused connect waits in a ``wait_for`` whose future completes in the turn the cancel comes. Nobody listens
on the port (a server gone). Before (``asyncio.wait_for``): the connect still ran 30 s after its caller gave up
(``wait_for`` never returned); after: it ends with its caller."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import nats
import pytest

from gamead_core.stop_bound import waited

DEADLINE = 30.0  #: seconds any one wait may take


def _connect(port: int, error_cb: Callable[[Exception], Awaitable[None]] | None = None) -> Any:
    """nats-py's connect as gamead's (retrying for ever), to loopback ``port``, where nobody listens (the test holds
    it: ``closed_port``)."""
    options: dict[str, Any] = {"reconnect_time_wait": 0.1, "max_reconnect_attempts": -1, "connect_timeout": 2}
    if error_cb is not None:
        options["error_cb"] = error_cb
    return nats.connect(f"nats://127.0.0.1:{port}", **options)


def test_a_connect_given_up_while_nats_is_gone_ends_though_nats_py_took_the_cancel(
        closed_port: Callable[[], int]) -> None:
    async def main() -> tuple[bool, int]:
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[None] = loop.create_future()
        asked = asyncio.Event()

        async def error_cb(exc: Exception) -> None:  # awaited by nats-py's connect loop after a refused attempt
            if isinstance(exc, ConnectionRefusedError) and not answer.done():
                asked.set()
                await asyncio.wait_for(answer, DEADLINE)

        connecting = asyncio.ensure_future(waited(_connect(closed_port(), error_cb), DEADLINE, "a NATS connect"))
        await asyncio.wait_for(asked.wait(), DEADLINE)
        answer.set_result(None)  # the callback's wait ends in the turn the cancel comes
        connecting.cancel()  # the caller gives up (a stop, or its own deadline)
        await asyncio.wait({connecting}, timeout=DEADLINE)
        left = len(asyncio.all_tasks()) - 1  # the connect's task, still trying, besides this one
        return connecting.done(), left

    given_up, left = asyncio.run(main())
    assert given_up and left == 0, "the connect to the gone NATS still runs after its caller gave it up"


def test_a_connect_that_outlasts_its_bound_raises_a_timeout_and_leaves_nothing_trying(
        closed_port: Callable[[], int]) -> None:
    async def main() -> int:
        with pytest.raises(asyncio.TimeoutError):
            await waited(_connect(closed_port()), 0.5, "a NATS connect")
        return len(asyncio.all_tasks()) - 1

    assert asyncio.run(main()) == 0, "the connect to the gone NATS still runs after its bound"


def test_a_result_that_comes_after_the_await_was_given_up_is_handed_to_unused() -> None:
    """A connect that took every cancel and connected after :func:`waited` gave it up (its ``again_for`` past): its
    client went to nobody and reconnected for ever. Now ``unused`` gets it (gamead closes it: close_for_good).
    Plain asyncio: an await that ignores cancels until the test has seen ``waited`` give up, then returns."""

    async def main() -> list[str]:
        given: list[str] = []
        got, gave_up = asyncio.Event(), asyncio.Event()

        async def stubborn() -> str:
            while not gave_up.is_set():
                try:
                    await gave_up.wait()
                except asyncio.CancelledError:
                    continue  # as nats-py's connect loop takes a cancel
            return "a client"

        async def unused(result: str) -> None:
            given.append(result)
            got.set()

        with pytest.raises(asyncio.TimeoutError):
            await waited(stubborn(), 0.05, "a stubborn await", again_for=0.1, unused=unused)
        gave_up.set()
        await asyncio.wait_for(got.wait(), DEADLINE)
        return given

    assert asyncio.run(main()) == ["a client"]
