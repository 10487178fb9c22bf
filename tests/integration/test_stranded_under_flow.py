"""regress40 F7: ``GET /v1/doctor`` during a 200/s submit answered ``ok: false`` with "6 stranded" (severity error,
no ad named), and ``gamead doctor`` 10 s later was clean. The stranded count of a level is the messages on its
subject − ``num_pending`` − ``num_ack_pending``, from two reads (``consumer_info``, then ``stream_info``): a publish
landing between them counted as stranded, in both of the doctor's readings. Now a race between the reads only
undercounts (:func:`gamead_core.worker.mover.stranded_bound`).

A real nats-server; the count's client goes through a proxy (:class:`tests.nats_filter.PublishFilter`) that holds
its ``STREAM.INFO`` requests while a task publishes to the level (nobody pulls it: every message is pending)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import nats
from nats.js import JetStreamContext

from gamead_core import names
from gamead_core.config import GameadSettings
from gamead_core.embedded import EmbeddedNats
from gamead_core.queue.topology import ensure_topology
from gamead_core.worker.mover import stranded_bound, stranded_count
from tests.nats_filter import PublishFilter

LEVEL = 3
ROUNDS = 3
HOLD = 0.4  #: seconds each STREAM.INFO request of the count waits in the proxy


Measure = Callable[[JetStreamContext, JetStreamContext], Awaitable[int]]


def _rounds_under_flow(server: EmbeddedNats, proxy: PublishFilter, measure: Measure,
                       setup: Callable[[JetStreamContext], Awaitable[None]] | None = None) -> list[tuple[int, int]]:
    """``ROUNDS`` times ``measure(js, js_held)`` (``js_held`` through ``proxy``, whose ``STREAM.INFO`` requests wait
    ``HOLD`` s) while a task publishes to priority ``LEVEL`` at ~200/s (the submit of regress40 F7), after the
    topology and ``setup(js)``; each round's ``(measured, publishes that landed meanwhile)``."""

    async def scenario() -> list[tuple[int, int]]:
        direct = await nats.connect(server.url)
        held = await nats.connect(proxy.url)
        js, js_held = direct.jetstream(), held.jetstream()
        stop = asyncio.Event()

        async def flow() -> None:
            n = 0
            while not stop.is_set():
                n += 1
                await js.publish(names.level_subject(LEVEL), b"{}", headers={names.HDR_AD_ID: f"flow-{n}"})
                await asyncio.sleep(0.005)

        try:
            await ensure_topology(js, GameadSettings())
            if setup is not None:
                await setup(js)
            task = asyncio.create_task(flow())
            out = []
            try:
                proxy.hold(f"$JS.API.STREAM.INFO.{names.work_stream(0)}", HOLD)
                for _ in range(ROUNDS):
                    first = (await js.stream_info(names.work_stream(0))).state.last_seq
                    measured = await measure(js, js_held)
                    landed = (await js.stream_info(names.work_stream(0))).state.last_seq - first
                    out.append((measured, landed))
            finally:
                proxy.pass_all()
                stop.set()
                await task
            return out
        finally:
            await held.close()
            await direct.close()

    return asyncio.run(scenario())


def test_a_steady_publish_flow_during_the_count_makes_nothing_stranded(
        fresh_nats: Callable[[], EmbeddedNats], links: list[PublishFilter]) -> None:
    """Figure before: 3 counts, each with its ``stream_info`` held 0.4 s while a task published to priority 3,
    said 61-69 stranded each (every publish of the hold; regress40 F7 saw 6). Now 0 each, with publishes landing
    during every count (checked: the stream's last sequence moved while it ran)."""
    server = fresh_nats()
    proxy = PublishFilter(("127.0.0.1", server.port)).start()
    links.append(proxy)

    async def count(js: JetStreamContext, js_held: JetStreamContext) -> int:
        counted, info = await stranded_count(js_held, LEVEL)
        assert info is not None
        return counted

    rounds = _rounds_under_flow(server, proxy, count)
    assert all(landed > 0 for _, landed in rounds), f"no publish landed during a count: {rounds}"
    assert [count for count, _ in rounds] == [0] * ROUNDS, f"(stranded, publishes during the count): {rounds}"


def test_the_bound_takes_off_what_was_published_between_the_reads() -> None:
    """Figures: 6 publishes between the consumer read (pending 100, ack pending 4) and the subject's count (110)
    leave 0, not 6; 2 really stranded with the same flow leave 2; a bound never goes below 0."""
    assert stranded_bound(110, 100, 4, last_before=500, last_after=506) == 0
    assert stranded_bound(112, 100, 4, last_before=500, last_after=506) == 2
    assert stranded_bound(90, 100, 4, last_before=500, last_after=500) == 0


def test_the_sweep_finds_what_is_stranded_while_another_level_flows(
        fresh_nats: Callable[[], EmbeddedNats], links: list[PublishFilter]) -> None:
    """review41 F1: the bound of regress40 F7 also capped the sweep (:func:`~gamead_core.worker.mover.stranded`,
    ``min(limit, count)``), and every publish to the partition, any level, between its reads is taken off: with a
    steady flow on priority 3, the 2 messages priority 4's consumer gave up on were never named (before the fix:
    ``stranded`` [] in 3 of 3 sweeps whose ``stream_info`` was held 0.4 s; the reaper's sweep settles nothing while
    anything flows). The sweep's own rule (only messages at or below the consumer's delivered sequence) cannot name
    a message published during its reads, so its cap is the count without the bound: 2 named in each sweep."""
    from gamead_core.queue.topology import consumer_config
    from gamead_core.worker.mover import stranded

    server = fresh_nats()
    proxy = PublishFilter(("127.0.0.1", server.port)).start()
    links.append(proxy)

    async def two_given_up(js: JetStreamContext) -> None:
        gives_up = consumer_config(4, GameadSettings().queue)
        gives_up.max_deliver, gives_up.ack_wait = 1, 1.0  # as an older gamead made them
        await js.add_consumer(names.work_stream(0), gives_up)
        for i in range(2):
            await js.publish(names.level_subject(4), b"{}", headers={names.HDR_AD_ID: f"given-up-{i}"})
        sub = await js.pull_subscribe_bind(names.level_consumer(4), names.work_stream(0))
        assert len(await sub.fetch(2, timeout=5)) == 2  # delivered once, never acknowledged
        deadline = asyncio.get_running_loop().time() + 20
        while len(await stranded(js, 4)) < 2:  # JetStream gives up at its next look at the pending list
            assert asyncio.get_running_loop().time() < deadline, "the consumer never gave up"
            await asyncio.sleep(0.1)

    async def sweep(js: JetStreamContext, js_held: JetStreamContext) -> int:
        return len(await stranded(js_held, 4))

    rounds = _rounds_under_flow(server, proxy, sweep, setup=two_given_up)
    assert all(landed > 0 for _, landed in rounds), f"no publish landed during a sweep's reads: {rounds}"
    assert [named for named, _ in rounds] == [2] * ROUNDS, f"(named, publishes during the reads): {rounds}"
