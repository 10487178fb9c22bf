"""Issue 12 item 3: the DLQ mover's sweep runs on one worker, the holder of the reaper lease."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import nats
import nats.js.errors
from nats.aio.client import Client as NATS

from gamead_core import names
from gamead_core.config import GameadSettings
from gamead_core.queue.topology import ensure_topology
from gamead_core.registry import Registry
from gamead_core.shutdown import close_for_good
from gamead_core.store.ads import AdStore
from gamead_core.worker.mover import Sweeper
from gamead_core.worker.reaper_loop import run_reaper
from gamead_core.embedded import EmbeddedNats
from tests.waits import until


def test_of_two_workers_only_the_lease_holder_sweeps(fresh_nats: Callable[[], EmbeddedNats]) -> None:
    """Two workers' reapers run side by side with a 0.2 s sweep: once four sweeps are done, all of them
    came from one worker, the one holding the ``reaper`` lease; the other read nothing for it."""
    server = fresh_nats()
    # a reaper lease of 3 s (3 heartbeats): a loaded machine's stall of a few tenths lapses no lease
    # (with 0.2 s heartbeats it lasted 0.6 s, and a lapsed lease is rightly taken over: both swept)
    settings = GameadSettings(registry={"heartbeat_interval": 1.0, "ttl": 10.0})

    async def main() -> tuple[int, int, str | None]:
        nc = await nats.connect(server.url)
        js = nc.jetstream()
        stop = asyncio.Event()
        try:
            await ensure_topology(js, settings)
            store = await AdStore.open(nc, js)
            registry = Registry(nc, js, settings.registry)
            sweepers = {me: Sweeper(every=0.2) for me in ("worker-a", "worker-b")}
            tasks = [asyncio.create_task(run_reaper(nc, js, store, registry, settings, me, stop, sweeper=sw))
                     for me, sw in sweepers.items()]
            await until(lambda: sum(sw.runs for sw in sweepers.values()) >= 4, timeout=20, what="4 sweeps")
            kv = await js.key_value(names.LEASES_BUCKET)
            holder = (await kv.get(names.REAPER_LEASE)).value.decode()
            stop.set()
            await asyncio.gather(*tasks)
            a, b = (sweepers[k].runs for k in ("worker-a", "worker-b"))
            return a, b, next((me for me in sweepers if me in holder), None)
        finally:
            await nc.close()

    a, b, holder = asyncio.run(main())
    assert a + b >= 4, (a, b)
    assert sorted((a, b))[0] == 0, f"both workers swept: {a} and {b}"
    assert holder == ("worker-a" if a else "worker-b")


def test_a_completed_ads_message_left_past_its_consumer_is_removed_at_once_after_nats_server_restarts(
    fresh_nats: Callable[[], EmbeddedNats],
) -> None:
    """attack43a F2 (selfheal43): after a full disk and the nats-server restart that ends it, a completed ad's
    message stayed in the work stream past its consumer (doctor: ``stranded`` + ``completed_with_message``) and
    nothing removed it while the doctor looked: the reaper sweeps only every ``SWEEP_EVERY`` s, the first a random
    5 s … ``SWEEP_EVERY`` after it leads again. Here such a message is made (a consumer with ``max_deliver`` 1
    delivers it once, unacknowledged; its record ``completed``), a reaper leads with an hour between sweeps, and
    nats-server restarts on the same store: the message is gone within 30 s, by the sweep's own rule (a final
    record: the message removed), and the record is still ``completed``. Without the sweep at a reconnection:
    the message still there after 30 s (checked: fails without, passes with)."""
    server = fresh_nats()
    settings = GameadSettings(registry={"heartbeat_interval": 1.0, "ttl": 10.0})

    async def main() -> tuple[int, str]:
        nc = await nats.connect(server.url, max_reconnect_attempts=-1, reconnect_time_wait=0.2)
        js = nc.jetstream()
        stop = asyncio.Event()
        try:
            store, ad_id = await _leftover(nc, js, settings)
            sweeper = Sweeper(every=3600.0)
            task = asyncio.create_task(run_reaper(nc, js, store, Registry(nc, js, settings.registry), settings,
                                                  "worker-a", stop, sweeper=sweeper))
            kv = await js.key_value(names.LEASES_BUCKET)

            async def leads() -> bool:
                try:
                    return "worker-a" in (await kv.get(names.REAPER_LEASE)).value.decode()
                except nats.js.errors.KeyNotFoundError:
                    return False

            await until(leads, timeout=20, what="the reaper lease")
            await asyncio.to_thread(server.stop)
            await asyncio.to_thread(server.start)
            return await _swept(js, store, ad_id, stop, task)
        finally:
            await close_for_good(nc)  # its server may be gone (a restart that failed): bounded (closes52)

    left, status = asyncio.run(main())
    assert (left, status) == (0, "completed")


def test_a_reaper_that_first_leads_after_a_nats_server_restart_removes_the_leftover_at_once(
    fresh_nats: Callable[[], EmbeddedNats],
) -> None:
    """ci53: the test above failed in CI (4 of 12 runs beside two busy loops here): the reaper's first round took
    the lease, the test saw it and stopped nats-server before that round reached the sweeper (the registry's
    listing cut off: ``NATS did not answer in time``), so the sweeper's first leading round came after the
    reconnection, had no count to compare it with, and put its first sweep a random 5 s … 3600 s on. A worker
    whose reaper first leads after a restart (another led then, or its first round was cut off) is the same.
    Here the message past its consumer is made, nats-server restarts on the same store, and only then a reaper
    starts on the reconnected connection, with an hour between sweeps: the message is gone within 30 s and the
    record still ``completed``. Without the fix: still there after 30 s (it passes only if the random first sweep
    falls within 30 s: 25 in 3,595)."""
    server = fresh_nats()
    settings = GameadSettings(registry={"heartbeat_interval": 1.0, "ttl": 10.0})

    async def main() -> tuple[int, str]:
        nc = await nats.connect(server.url, max_reconnect_attempts=-1, reconnect_time_wait=0.2)
        js = nc.jetstream()
        stop = asyncio.Event()
        try:
            store, ad_id = await _leftover(nc, js, settings)
            await asyncio.to_thread(server.stop)
            await asyncio.to_thread(server.start)
            await until(lambda: nc.stats["reconnects"] >= 1 and nc.is_connected, timeout=30, what="the reconnection")
            task = asyncio.create_task(run_reaper(nc, js, store, Registry(nc, js, settings.registry), settings,
                                                  "worker-a", stop, sweeper=Sweeper(every=3600.0)))
            return await _swept(js, store, ad_id, stop, task)
        finally:
            await close_for_good(nc)  # its server may be gone (a restart that failed): bounded (closes52)

    left, status = asyncio.run(main())
    assert (left, status) == (0, "completed")


async def _swept(js: nats.js.JetStreamContext, store: AdStore, ad_id: str, stop: asyncio.Event,
                 reaper: asyncio.Task[None]) -> tuple[int, str]:
    """Wait (30 s at most) until level 4 holds no message; stop the ``reaper``; what is left on the subject and the
    ad's record status."""
    await until(lambda: _none_left(_on_subject(js)), timeout=30, what="the leftover message removed")
    left = await _on_subject(js)
    stop.set()
    await reaper
    return left, (await store.get(ad_id)).record.status.value


async def _leftover(nc: NATS, js: nats.js.JetStreamContext, settings: GameadSettings) -> tuple[AdStore, str]:
    """A completed ad's message left past its consumer on level 4 (a consumer with ``max_deliver`` 1 delivered it
    once, unacknowledged; its record ``completed``), the topology made first; the store and the ad's id."""
    from gamead_core.ad_ids import new_ad_id
    from gamead_core.models import AdStatus
    from gamead_core.queue.publish import publish_ad
    from gamead_core.queue.topology import consumer_config
    from gamead_core.store.ads import encode
    from gamead_core.worker.mover import stranded
    from tests.integration.test_records import record

    await ensure_topology(js, settings)
    store = await AdStore.open(nc, js)
    ad_id = new_ad_id()
    done = record(ad_id, AdStatus.COMPLETED).model_copy(update={"priority": 4})
    await store.create(done)
    given_up = consumer_config(4, settings.queue)
    given_up.max_deliver, given_up.ack_wait = 1, 1.0
    await js.add_consumer(names.ADS_STREAM, given_up)  # delivers once, never again
    await publish_ad(js, ad_id=ad_id, level=4, payload=encode(done), timeout=5)
    sub = await js.pull_subscribe_bind(names.level_consumer(4), names.ADS_STREAM)
    assert len(await sub.fetch(1, timeout=5)) == 1  # delivered, never acknowledged
    await until(lambda: stranded(js, 4), timeout=20, what="the message past its consumer")
    return store, ad_id


async def _on_subject(js: nats.js.JetStreamContext) -> int:
    """The messages on level 4's subject of the work stream."""
    subject = names.level_subject(4)
    info = await js.stream_info(names.ADS_STREAM, subjects_filter=subject)
    return int((info.state.subjects or {}).get(subject, 0))


async def _none_left(count: Awaitable[int]) -> bool:
    """Whether ``count`` reads 0 (a reading that fails, as during a reconnection, is no: look again)."""
    try:
        return await count == 0
    except Exception:  # noqa: BLE001 - NATS unreachable for a moment
        return False


def test_the_sweep_a_reconnection_makes_due_is_tried_again_soon_when_it_fails(
        fresh_nats: Callable[[], EmbeddedNats]) -> None:
    """review44 F2: a reconnection makes the sweep due at once (selfheal43), but its next time was set to
    ``every`` on before it ran: a sweep that failed then (a restarted server not answering yet; here a closed
    connection's) left the rest to ``every`` later (3600 s here, 60 s as shipped). Now one owed by a
    reconnection is tried again ``min(5 s, every)`` on until one completes; then ``every`` again. On the
    sweeper's own clock (``monotonic``): without the fix, no sweep at +5 s (0 of 1); with it, 1, then none at +10 s."""
    server = fresh_nats()
    settings = GameadSettings()
    mono = [1000.0]

    async def main() -> tuple[int, int, int]:
        nc = await nats.connect(server.url)
        js = nc.jetstream()
        try:
            await ensure_topology(js, settings)
            store = await AdStore.open(nc, js)
            sweeper = Sweeper(every=3600.0, monotonic=lambda: mono[0])
            assert await sweeper.tick(True, js, store, settings, "w", reconnects=0) is None  # first lead: scheduled
            gone = await nats.connect(server.url)
            await gone.close()  # NATS not answering yet after its restart: every request of the sweep fails
            mono[0] += 1.0
            failed = 0
            try:
                await sweeper.tick(True, gone.jetstream(), store, settings, "w", reconnects=1)  # due at once
            except Exception:  # noqa: BLE001 - the reaper logs it and goes on
                failed = 1
            mono[0] += 5.0
            swept = int(await sweeper.tick(True, js, store, settings, "w", reconnects=1) is not None)
            mono[0] += 5.0
            again = int(await sweeper.tick(True, js, store, settings, "w", reconnects=1) is not None)
            return failed, swept, again
        finally:
            await nc.close()

    assert asyncio.run(main()) == (1, 1, 0)
