"""The API's writes to NATS linger at a steady flow (``api.write_linger_ms``, :mod:`gamead_core.queue.write_linger`;
issue 14, session 39): writes put in the buffer within one linger leave in one socket write, a write after a silence
leaves at once, and every write is still acknowledged. A real nats-server; gamead's own connection and publish path
(:func:`gamead_core.queue.acks.publish_acked`, as a submit's record and message go)."""

from __future__ import annotations

import asyncio
from typing import Any

from gamead_core.config import load_settings
from gamead_core.embedded import EmbeddedNats
from gamead_core.queue.acks import publish_acked
from gamead_core.queue.connection import connect
from gamead_core.queue.write_linger import ATTR, linger_writes
from gamead_core.shutdown import close_connection

STEADY = 60  #: acked writes, one every GAP
GAP = 0.002  #: seconds between two writes of the flow: 500 writes a second, 10 in a linger
LINGER_MS = 20.0  #: long beside the flow's gaps, even on a loaded machine


async def _flow(url: str, linger_ms: float, stream: str, *, due: bool = False) -> tuple[int, int, bool]:
    """``STEADY`` acked publishes at a steady flow, then one after a 1.5 s silence, on a connection with a write
    linger of ``linger_ms``: (socket writes the flow took, acks received, a write of the lone publish waits).

    ``due``: the flow is one of requests arriving from outside, write ``i`` due ``i`` × :data:`GAP` after the
    first (as submits come from clients, whatever the API's machine does): each turn writes every write due
    by then. Without it, each turn writes one and the next comes :data:`GAP` after that turn, a flow that slows
    with the machine: at load 35-42 its writes came 10-40 ms apart (a 60-write flow took 1-2 s), ~50 a second,
    where a 20 ms linger rightly gathers nothing (rate x linger < 1: 40-45 socket writes in two fresh clones)."""
    nc = linger_writes(await connect(load_settings().nats, url, name="gamead-api"), linger_ms)
    try:
        js = nc.jetstream()
        await js.add_stream(name=stream, subjects=[f"{stream}.>"])
        writes = 0
        transport: Any = nc._transport  # nats-py's; its writes counted, not changed
        write = transport.writelines

        def counted(data: Any) -> None:
            nonlocal writes
            writes += 1
            write(data)

        transport.writelines = counted
        acks: list[Any] = []
        loop, start = asyncio.get_running_loop(), asyncio.get_running_loop().time()
        while len(acks) < STEADY:
            until = len(acks) + 1 if not due else min(STEADY, int((loop.time() - start) / GAP) + 1)
            for i in range(len(acks), max(until, len(acks) + 1)):
                acks.append(await publish_acked(js, f"{stream}.ad", b"ad %d" % i, headers={"Nats-Msg-Id": f"m{i}"},
                                                timeout=30))
            await asyncio.sleep(GAP)
        answered = await asyncio.wait_for(asyncio.gather(*acks), 60)
        flow_writes = writes
        await asyncio.sleep(1.5)  # 75 lingers of silence: the flow is forgotten
        lone = await publish_acked(js, f"{stream}.ad", b"lone", headers={"Nats-Msg-Id": "lone"}, timeout=30)
        linger = getattr(nc, ATTR)
        lone_waits = linger is not None and linger.waiting
        await asyncio.wait_for(lone, 60)
        return flow_writes, len({a.seq for a in answered}), lone_waits
    finally:
        await close_connection(nc)


def test_a_steady_flow_of_writes_shares_socket_writes(nats_server: EmbeddedNats) -> None:
    """60 acked writes due 2 ms apart with a 20 ms linger leave in at most 30 socket writes (figure, without the
    linger: 60 writes, one each), every one acknowledged once (60 distinct sequences); a write after 1.5 s of
    silence is sent at once (no linger waits for it)."""
    writes, acked, lone_waits = asyncio.run(_flow(nats_server.url, LINGER_MS, "LINGER_ON", due=True))
    assert acked == STEADY
    assert writes <= STEADY // 2, f"{writes} socket writes for {STEADY} writes at a steady flow"
    assert not lone_waits


def test_without_a_linger_each_write_goes_alone(nats_server: EmbeddedNats) -> None:
    """``api.write_linger_ms: 0``: the connection is nats-py's as it was: each write of the flow in a socket write
    of its own (the figure the linger is measured against), and no linger is kept."""
    writes, acked, lone_waits = asyncio.run(_flow(nats_server.url, 0.0, "LINGER_OFF"))
    assert acked == STEADY
    assert writes >= STEADY * 3 // 4, f"{writes} socket writes for {STEADY} writes"
    assert not lone_waits
