"""``gamead up``'s supervisor connects to NATS while it keeps supervising
(gamead_cli.commands.up_supervise.supervising).

A ``gamead up`` whose embedded nats-server died just before its supervisor connected (a test run stopped at that
moment) hung:
nats-py's connect, with reconnects allowed and no attempt limit (``connect_options``), tried for ever; the loop
that restarts dead children never ran, so NATS never came back, and every Ctrl-C only printed "stopping now:
workers hand their ads back". A real nats-py client against a port nothing listens on (the same options)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import nats

from gamead_cli.commands.up_supervise import supervising
from gamead_core.config import NatsSettings
from gamead_core.embedded import EmbeddedNats
from gamead_core.queue.connection import connect_options


def _connect(url: str) -> object:
    return nats.connect(**connect_options(NatsSettings(connect_timeout=0.5), url, name="test supervisor"))


def test_a_stop_ends_a_connect_that_never_succeeds_and_children_are_supervised_meanwhile(
        closed_port: Callable[[], int]) -> None:
    polls: list[int] = []
    port = closed_port()

    async def run() -> object:
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(1.0, stop.set)  # Ctrl-C, one second in
        return await supervising(_connect(f"nats://127.0.0.1:{port}"), lambda: polls.append(1), stop,
                                 every=0.05)

    done = threading.Event()
    result: list[object] = []
    thread = threading.Thread(target=lambda: (result.append(asyncio.run(run())), done.set()), daemon=True)
    thread.start()
    assert done.wait(30), "the stop did not end the endless connect"
    assert result == [None]
    assert len(polls) >= 2  # dead children were looked after while it tried


def test_a_connect_that_succeeds_returns_the_client(tmp_path) -> None:  # type: ignore[no-untyped-def]
    server = EmbeddedNats(tmp_path / "nats").start()
    try:
        async def run() -> bool:
            nc = await supervising(_connect(server.url), lambda: None, asyncio.Event())
            assert nc is not None
            connected = nc.is_connected  # type: ignore[attr-defined]
            await nc.close()  # type: ignore[attr-defined]
            return connected

        assert asyncio.run(run())
    finally:
        server.stop()
