"""attack27 F10: a DLQ entry of an ad whose record is final (completed, or failed: purged), the state a SIGKILL of
nats-server leaves when it brings back entries a replay or a purge had deleted, is removed by the reaper's lease
holder by itself: at its first round, and at once after a reconnection to a restarted nats-server. The dead ad's
entry stays. `gamead doctor` then finds nothing. Real nats-server, restarted; gamead's own reaper loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import nats

from gamead_core.ad_ids import new_ad_id
from gamead_core.config import GameadSettings
from gamead_core.doctor.repair import entry_from_record
from gamead_core.embedded import EmbeddedNats
from gamead_core.models import AdError, AdRecord, AdStatus, utcnow
from gamead_core.queue.dlq import DeadLetters
from gamead_core.queue.topology import ensure_topology
from gamead_core.registry import Registry
from gamead_core.shutdown import close_for_good
from gamead_core.store.ads import AdStore
from gamead_core.worker.dlq_heal import DlqHealer
from gamead_core.worker.mover import Sweeper
from gamead_core.worker.reaper_loop import run_reaper
from tests.support import assert_doctor_clean, submission
from tests.waits import until

SETTINGS = GameadSettings.model_validate({"registry": {"ttl": 2.0, "heartbeat_interval": 0.5}})


async def _ad_with_entry(store: AdStore, dlq: DeadLetters, status: AdStatus) -> str:
    """An ad whose record has ``status`` and which has a DLQ entry (as its death wrote it), made with gamead's own
    writes: what a replay (completed) or a purge (failed) leaves when nats-server loses the entry's delete."""
    now = utcnow()
    error = AdError(error_class="PermanentError", message="made up for a test", retryable=False, at=now)
    dead = AdRecord(id=new_ad_id(), status=AdStatus.DEAD, priority=3, submitted_at=now, ad=submission(),
                    attempts=1, completed_at=now, error=error, first_failure_at=now)
    seq, _ = await dlq.add(entry_from_record(dead), dedupe=False)
    update: dict[str, object] = {"status": status}
    if status == AdStatus.COMPLETED:
        update.update(replay_of=seq, replays=1, replayed_at=now)
    elif status == AdStatus.FAILED:
        update.update(purged_from=seq)
    await store.create(dead.model_copy(update=update))
    return dead.id


def test_entries_of_final_ads_leave_the_dlq_by_themselves_and_again_after_a_nats_restart(
    fresh_nats: Callable[[], EmbeddedNats],
) -> None:
    server = fresh_nats()

    async def scenario(nc: nats.NATS) -> tuple[dict[str, bool], dict[str, bool], int]:
        js = nc.jetstream()
        await ensure_topology(js, SETTINGS)
        store, dlq = await AdStore.open(nc, js), DeadLetters(js)
        ads = {"completed": await _ad_with_entry(store, dlq, AdStatus.COMPLETED),
               "failed": await _ad_with_entry(store, dlq, AdStatus.FAILED),
               "dead": await _ad_with_entry(store, dlq, AdStatus.DEAD)}

        async def in_dlq(ad_ids: dict[str, str]) -> dict[str, bool]:
            return {k: await dlq.current(v) is not None for k, v in ad_ids.items()}

        healer = DlqHealer(every=3600.0)  # no periodic pass within the test: only the first and a reconnection's
        stop = asyncio.Event()
        reaper = asyncio.create_task(run_reaper(nc, js, store, Registry(nc, js, SETTINGS.registry), SETTINGS, "r",
                                                stop, sweeper=Sweeper(healer=healer)))
        now: dict[str, bool] = {}

        async def healed() -> bool:
            now.update(await in_dlq(ads))
            return not (now["completed"] or now["failed"]) and bool(healer.passes)

        await until(healed, timeout=30, what=lambda: f"the entries of final ads to leave the DLQ (in it: {now})")
        first = await in_dlq(ads)

        # an entry of a completed ad that comes back with the restarted server (written here before the restart)
        later = {"completed again": await _ad_with_entry(store, dlq, AdStatus.COMPLETED)}
        server.stop()
        server.start()
        async def healed_again() -> bool:
            try:
                await ensure_topology(js, SETTINGS)  # as the API's topology watch does after a restart
                return not (await in_dlq(later))["completed again"]
            except Exception:  # noqa: BLE001 - NATS coming back
                return False

        await until(healed_again, timeout=30, what="the entry of a completed ad to leave after a nats-server restart")
        after = {**await in_dlq(ads), **await in_dlq(later)}
        stop.set()
        await asyncio.gather(reaper, return_exceptions=True)
        return first, after, healer.removed

    async def main() -> tuple[dict[str, bool], dict[str, bool], int]:
        nc = await nats.connect(server.url, reconnect_time_wait=0.2, max_reconnect_attempts=-1)
        try:
            return await scenario(nc)
        finally:  # its server restarted, or not if that failed: bounded either way (closes52)
            await close_for_good(nc)

    first, after, removed = asyncio.run(main())
    assert first == {"completed": False, "failed": False, "dead": True}, first
    assert after == {"completed": False, "failed": False, "dead": True, "completed again": False}, after
    assert removed == 3
    assert_doctor_clean(server.url)


def test_a_healing_round_looks_at_no_more_than_its_batch_and_the_pass_goes_on_from_there(
    fresh_nats: Callable[[], EmbeddedNats],
) -> None:
    """Bounded work per round: five entries of completed ads and a dead ad's entry, a batch of 2 entries. Each
    round removes at most two; the third round ends the pass (the dead ad's entry stays), and no new pass starts
    before ``every`` unless a reconnection asks for one; a periodic pass looks at a quarter of the batch a round."""
    server = fresh_nats()

    async def main() -> tuple[list[int], int, bool, list[int]]:
        nc = await nats.connect(server.url)
        js = nc.jetstream()
        await ensure_topology(js, SETTINGS)
        store, dlq = await AdStore.open(nc, js), DeadLetters(js)
        for _ in range(5):
            await _ad_with_entry(store, dlq, AdStatus.COMPLETED)
        dead = await _ad_with_entry(store, dlq, AdStatus.DEAD)
        healer = DlqHealer(every=3600.0, batch=2)
        rounds = [await healer.tick(js, store, reconnects=0) for _ in range(4)]
        again = await healer.tick(js, store, reconnects=1)  # a reconnection: a new pass, nothing left to remove
        kept = await dlq.current(dead) is not None
        # a periodic pass (no reconnection asked for it) goes at a quarter of the pace: 1 entry a round here
        slow = DlqHealer(every=0.0, batch=4)
        await slow.tick(js, store)  # the leader's first pass: the dead ad's entry only
        for _ in range(3):
            await _ad_with_entry(store, dlq, AdStatus.COMPLETED)
        periodic = [await slow.tick(js, store) for _ in range(4)]  # the dead ad's entry first
        await nc.close()
        return rounds + [again], healer.passes, kept, periodic

    rounds, passes, kept, periodic = asyncio.run(main())
    assert rounds == [2, 2, 1, 0, 0], rounds
    assert passes == 2 and kept
    assert periodic == [0, 1, 1, 1], periodic
