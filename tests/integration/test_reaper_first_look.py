"""A reaper's first look after a gap (the lease taken, a reconnection; gamead_core.worker.orphans.Orphans.unseen):
an API that stopped cleanly is not taken for a death however long before (review41 F2), one that died still is, and
the once-said doctor warning about older deaths is said after a failed check (F10); two node ids that differ only in
``:``/``@``/``_``/``.`` keep two registry entries (F9). Real nats-server, registry.ttl 1 s."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from gamead_core.embedded import EmbeddedNats
from tests.support import on_js
from tests.waits import until

#: seconds any one wait of a drill may take
DEADLINE = 30.0


def _settings(**queue: Any) -> Any:
    from gamead_core.config import load_settings

    base = load_settings(None)
    return base.model_copy(update={
        "registry": base.registry.model_copy(update={"ttl": 1.0, "heartbeat_interval": 0.25}),
        "queue": base.queue.model_copy(update=queue)})


async def _records_of(store: Any, origin: str, title: str) -> list[str]:
    """Three queued records created as the API of ``origin`` creates them (``Gamead-Origin``), no message."""
    from gamead_core.ad_ids import new_ad_id
    from gamead_core.models import AdRecord, AdStatus, utcnow
    from tests.support import submission

    store.origin, ids = origin, []
    for i in range(3):
        record = AdRecord(id=new_ad_id(), status=AdStatus.QUEUED, priority=2, submitted_at=utcnow(),
                          ad=submission(title=f"{title} {i}"))
        await store.create(record)
        ids.append(record.id)
    return ids


def test_a_clean_stop_older_than_the_registry_ttl_is_not_a_death_and_a_death_still_is(
    fresh_nats: Callable[[], EmbeddedNats], caplog: Any,
) -> None:
    """review41 F2: a clean stop was told only by the registry's delete mark, which the bucket's max_age
    (``registry.ttl``) removes with the entry, while a reaper's first look goes back ``duplicate_window`` − SAFETY:
    an API stopped cleanly 10-100 s before a worker took the lease (a rolling deploy) was logged "died unseen" and
    every still-queued record of it re-put and published again. Here (registry.ttl 1 s) API ``api-clean-1`` beats
    and stops cleanly (run_heartbeat) leaving 3 queued records; API ``api-dead-1`` puts its entry once and leaves 3
    (kill -9: no delete); both marks and entries gone, a reaper's rounds run until the dead one is settled. The
    clean one's records are not re-put (revisions unchanged) and no line calls it dead; the dead one's 3 are re-put.
    Without the stop note (registry/beat.py as before): the clean one's 3 re-put too, WARNING 'api-clean-1 is not in
    the registry'."""
    from gamead_core.queue.topology import ensure_topology
    from gamead_core.registry import Registry, api_node_info, incarnation, run_heartbeat
    from gamead_core.store.ads import AdStore
    from gamead_core.worker.orphans import Orphans

    server = fresh_nats()

    def said(node_id: str) -> list[str]:
        return [r.getMessage() for r in caplog.records if f"{node_id} is not in the registry" in r.getMessage()]

    async def drill(js: Any) -> tuple[dict[str, int], dict[str, int], dict[str, int], dict[str, int]]:
        settings = _settings()
        await ensure_topology(js, settings)
        registry = Registry(js._nc, js, settings.registry)
        store = await AdStore.open(js._nc, js)
        clean = api_node_info("api-clean-1", started=time.time())
        dead = api_node_info("api-dead-1", started=time.time())
        stop = asyncio.Event()
        beating = asyncio.create_task(run_heartbeat(registry, lambda: clean, 0.25, stop))
        await until(lambda: _entry(registry, clean.id), timeout=DEADLINE, what="api-clean-1 beats")
        clean_ids = await _records_of(store, incarnation(clean.id, clean.pid, clean.started_at), "Stopped cleanly")
        await registry.put(dead)
        dead_ids = await _records_of(store, incarnation(dead.id, dead.pid, dead.started_at), "Killed")
        stop.set()
        await beating  # the clean stop: entry deleted (and, now, noted)
        assert (await registry.lookup(clean.id))[1], "no delete mark right after the clean stop"
        await until(lambda: _all_gone(registry),
                    timeout=DEADLINE, what="the delete mark and the dead entry gone (registry.ttl)")
        before = {i: (await store.get(i)).revision for i in clean_ids + dead_ids}  # type: ignore[union-attr]
        orphans = Orphans()

        async def dead_settled() -> bool:
            await orphans.settle(js, settings, registry, {}, 0)
            now = {i: (await store.get(i)).revision for i in dead_ids}  # type: ignore[union-attr]
            return all(now[i] != before[i] for i in dead_ids)

        await until(dead_settled, timeout=DEADLINE, what="the records of the API that died, settled")
        after = {i: (await store.get(i)).revision for i in clean_ids + dead_ids}  # type: ignore[union-attr]
        return ({i: before[i] for i in clean_ids}, {i: after[i] for i in clean_ids},
                {i: before[i] for i in dead_ids}, {i: after[i] for i in dead_ids})

    with caplog.at_level(logging.INFO, logger="gamead_core"):
        clean_before, clean_after, dead_before, dead_after = on_js(server.url, drill)
    re_put = [i for i in clean_before if clean_after[i] != clean_before[i]]
    assert re_put == [], f"{len(re_put)} of 3 records of the cleanly stopped API re-put"
    assert said("api-clean-1") == []
    assert all(dead_after[i] != dead_before[i] for i in dead_before)
    assert len(said("api-dead-1")) == 1 and "3 record(s)" in said("api-dead-1")[0]


async def _entry(registry: Any, node_id: str) -> bool:
    return (await registry.lookup(node_id))[0] is not None


async def _all_gone(registry: Any) -> bool:
    return await registry.lookup("api-clean-1") == (None, False) and await registry.lookup("api-dead-1") == (None,
                                                                                                             False)


def test_the_older_deaths_warning_is_said_after_its_check_failed_once(
    fresh_nats: Callable[[], EmbeddedNats], caplog: Any,
) -> None:
    """review41 F10: at a reaper's first look, the check for deaths older than its read (the registry younger than
    the read's start while records are older: run `gamead doctor --repair`) said "(tried again)" when it failed but
    was not: the WARNING was lost until the next lease or reconnection. Here (queue.duplicate_window 21 s: the read
    goes back 1 s) a record is written, the registry bucket deleted (as a NATS restart loses it) so the check fails
    at the first look, then made again: the next round says the doctor line. Without the retry: never said."""
    from gamead_core import clock, names
    from gamead_core.queue.topology import ensure_topology
    from gamead_core.registry import Registry
    from gamead_core.store.ads import AdStore
    from gamead_core.worker.orphans import Orphans

    server = fresh_nats()

    def lines(part: str) -> list[str]:
        return [r.getMessage() for r in caplog.records if part in r.getMessage()]

    async def drill(js: Any) -> None:
        settings = _settings(duplicate_window=21.0)
        await ensure_topology(js, settings)
        registry = Registry(js._nc, js, settings.registry)
        store = await AdStore.open(js._nc, js)
        await _records_of(store, "api-old-1:1@2026-01-01T00:00:00+00:00", "Left before the restart")
        written = clock.now()
        await js.delete_stream(names.kv_stream(names.REGISTRY_BUCKET))
        orphans = Orphans()

        async def failed_once() -> bool:
            await until(lambda: _past(written + 1.5), timeout=DEADLINE, what="past the read's start")
            await orphans.unseen(js, settings, registry, {}, 0)
            return bool(lines("(tried again)"))

        await until(failed_once, timeout=DEADLINE, what="the older-deaths check failed once")
        assert lines("gamead doctor --repair") == []
        await Registry(js._nc, js, settings.registry).open()  # made again, after the read's start

        async def said() -> bool:
            await orphans.unseen(js, settings, registry, {}, 0)
            return bool(lines("gamead doctor --repair"))

        await until(said, timeout=DEADLINE, what="the doctor line, once the check ran")

    with caplog.at_level(logging.WARNING, logger="gamead_core.worker.orphans"):
        on_js(server.url, drill)
    assert len(lines("gamead doctor --repair")) == 1


async def _past(at: float) -> bool:
    from gamead_core import clock

    return clock.now() > at


def test_node_ids_differing_only_in_escaped_characters_keep_their_own_entries(
    fresh_nats: Callable[[], EmbeddedNats],
) -> None:
    """review41 F9: ``node_key`` turned every character a key cannot hold into ``_``: ``w:1``, ``w@1``, ``w.1`` and
    ``w_1`` (all valid node ids) shared one key, each beat overwriting the other's (the reaper saw each vanish and
    come back). Here the four are put: the registry lists four nodes, each looked up as itself (before: one)."""
    from gamead_core.registry import Registry, api_node_info

    server = fresh_nats()
    ids = ["w:1", "w@1", "w.1", "w_1"]

    async def drill(js: Any) -> tuple[list[str], list[str | None]]:
        registry = Registry(js._nc, js, _settings().registry.model_copy(update={"ttl": 60.0}))
        for node_id in ids:
            await registry.put(api_node_info(node_id, started=time.time()))
        looked = [(await registry.lookup(node_id))[0] for node_id in ids]
        return sorted(n.id for n in await registry.list()), [n.id if n else None for n in looked]

    listed, looked = on_js(server.url, drill)
    assert listed == sorted(ids)
    assert looked == ids


def test_without_the_stops_bucket_a_clean_stop_is_told_as_before(
    fresh_nats: Callable[[], EmbeddedNats], caplog: Any,
) -> None:
    """A stack whose topology an older gamead made has no ``gamead_stops``: a clean stop still deletes the entry (its
    note not written, one INFO line), the delete mark tells it while it lasts, and after ``registry.ttl`` it reads
    as no clean stop (as before the note), never an error."""
    from gamead_core import names
    from gamead_core.queue.topology import ensure_topology
    from gamead_core.registry import Registry, api_node_info, run_heartbeat

    server = fresh_nats()

    async def drill(js: Any) -> tuple[bool, bool]:
        settings = _settings()
        await ensure_topology(js, settings)
        await js.delete_key_value(names.STOPS_BUCKET)
        registry = Registry(js._nc, js, settings.registry)
        node = api_node_info("api-older-stack-1", started=time.time())
        stop = asyncio.Event()
        beating = asyncio.create_task(run_heartbeat(registry, lambda: node, 0.25, stop))
        await until(lambda: _entry(registry, node.id), timeout=DEADLINE, what="it beats")
        stop.set()
        await beating
        right_after = await registry.stopped(node)

        async def mark_gone() -> bool:
            return await registry.lookup(node.id) == (None, False)

        await until(mark_gone, timeout=DEADLINE, what="the delete mark gone (registry.ttl)")
        return right_after, await registry.stopped(node)

    with caplog.at_level(logging.INFO, logger="gamead_core.registry"):
        right_after, later = on_js(server.url, drill)
    assert (right_after, later) == (True, False)
    assert any("clean stop of api-older-stack-1 not noted in gamead_stops" in r.getMessage() for r in caplog.records)


def test_a_look_slower_than_two_rounds_is_not_a_gap_that_calls_for_another(
    fresh_nats: Callable[[], EmbeddedNats], monkeypatch: Any,
) -> None:
    """perf42: the gap that calls for a first look (the lease not renewed for two rounds) was timed from the start
    of the last round's call, so a look that itself took longer than two rounds (the window's records read on a
    loaded host: 41 reads of ~12,000 headers in one 2,000-ad drain under cProfile) made the next round see a gap
    and look again ``registry.ttl`` later, for as long as the host stayed slow. Here (heartbeat_interval 0.25 s,
    registry.ttl 1 s) the read is the real one, then held 0.8 s (a slow host); rounds run every 0.125 s for 3 s
    after the first look: 1 read with the fix, 2 without (the gap timed from the start of the call, as before)."""
    from gamead_core.queue.topology import ensure_topology
    from gamead_core.registry import Registry
    from gamead_core.worker import orphans as orphans_module
    from gamead_core.worker.orphans import Orphans

    server = fresh_nats()
    real, reads = orphans_module.read_records, []

    async def slow_read(*args: Any, **kwargs: Any) -> Any:
        got = await real(*args, **kwargs)
        reads.append(time.monotonic())
        await asyncio.sleep(0.8)  # a host too loaded to read the window within two rounds
        return got

    monkeypatch.setattr(orphans_module, "read_records", slow_read)

    async def drill(js: Any) -> None:
        settings = _settings()
        await ensure_topology(js, settings)
        registry = Registry(js._nc, js, settings.registry)
        await registry.open()
        orphans = Orphans()

        async def round_() -> bool:  # one reaper round's call, at the reaper's pace (every heartbeat_interval / 2)
            await orphans.unseen(js, settings, registry, {}, 0)
            await asyncio.sleep(0.125)
            return bool(reads)

        await until(round_, timeout=DEADLINE, what="the first look")
        watched_until = time.monotonic() + 3.0  # > registry.ttl + a gap: a second look would have come by then
        while time.monotonic() < watched_until:
            await round_()

    on_js(server.url, drill)
    assert len(reads) == 1, f"{len(reads)} reads of the window: a slow look was taken for a gap"
