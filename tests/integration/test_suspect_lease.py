"""The suspect lease at a real nats-server (gamead_core.worker.suspect_turn): taken by one process, handed back by
another while its holder's registry entry is that process's, taken over once it is not, freed by the recovery of
its dead holder (:func:`gamead_core.worker.reaper.recover`), and a NATS away never strands the suspect ad."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import nats
import pytest

from gamead_core import clock, names
from gamead_core.config import GameadSettings
from gamead_core.embedded import EmbeddedNats
from gamead_core.models import utcnow
from gamead_core.queue.topology import ensure_topology
from gamead_core.registry import NodeInfo, Registry
from gamead_core.shutdown import close_for_good
from gamead_core.store.ads import AdStore
from gamead_core.worker.reaper import recover
from gamead_core.worker.shield import Shield
from gamead_core.worker.solo import SoloGate
from gamead_core.worker import suspect_turn
from gamead_core.worker.suspect_turn import SuspectTurns
from gamead_core.worker.turn_rule import Turn
from tests.waits import until


class _Msg:
    """A delivery's stand-in: only its ``nak`` is asked for (what the hand-back sends)."""

    def __init__(self) -> None:
        self.naks: list[float] = []

    async def nak(self, delay: float = 0) -> None:
        self.naks.append(delay)


def _node(worker_id: str, pid: int) -> NodeInfo:
    now = utcnow()
    return NodeInfo(id=worker_id, role="worker", host="h", pid=pid, version="t", started_at=now, heartbeat_at=now)


def _turns(settings: GameadSettings, registry: Registry, worker_id: str, pid: int) -> SuspectTurns:
    turns = SuspectTurns(settings, worker_id, SoloGate(), Shield(), registry)
    turns.pid = pid  # one test process plays several worker processes
    return turns


async def _w1_registered(nc: Any, settings: GameadSettings
                         ) -> tuple[Any, Registry, NodeInfo, SuspectTurns, SuspectTurns]:
    """The topology made on ``nc``, worker w1 (pid 101) registered and w2 (pid 202) not: ``(js, registry, w1's
    entry, w1's turns, w2's turns)``."""
    js = nc.jetstream()
    await ensure_topology(js, settings)
    registry = Registry(nc, js, settings.registry)
    w1_node = _node("w1", 101)
    await registry.put(w1_node)
    return js, registry, w1_node, _turns(settings, registry, "w1", 101), _turns(settings, registry, "w2", 202)


async def _two_workers(nc: Any, settings: GameadSettings) -> tuple[Any, SuspectTurns, SuspectTurns]:
    """The topology made on ``nc``, and two registered workers' turns: ``(js, w1 pid 101, w2 pid 202)``."""
    js, registry, _, w1, w2 = await _w1_registered(nc, settings)
    await registry.put(_node("w2", 202))
    return js, w1, w2


async def _taken_within(turns: SuspectTurns, ad_id: str, seconds: float = 20.0,
                        before: Callable[[], Awaitable[object]] | None = None) -> bool:
    """Whether a turn of ``turns`` for ``ad_id`` takes the lease within ``seconds`` (tried every 0.2 s, after
    ``before()`` if given)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if before is not None:
            await before()
        async with turns.turn(_Msg(), ad_id) as taken:  # type: ignore[arg-type]
            pass
        if taken is True:
            return True
        await asyncio.sleep(0.2)
    return False


async def _lease(js: Any) -> Turn | None:
    kv = await js.key_value(names.LEASES_BUCKET)
    try:
        return Turn.from_json((await kv.get(names.SUSPECT_LEASE)).value)
    except nats.js.errors.KeyNotFoundError:
        return None


@pytest.mark.timeout(60)
def test_one_holder_at_a_time_and_a_dead_holders_recovery_frees_it(
    fresh_nats: Callable[[], EmbeddedNats],
) -> None:
    server = fresh_nats()
    settings = GameadSettings()

    async def main() -> None:
        nc = await nats.connect(server.url)
        try:
            js, w1, w2 = await _two_workers(nc, settings)

            first = _Msg()
            async with w1.turn(first, "ad-1") as alone:  # type: ignore[arg-type]
                assert alone is True and not first.naks
                held = await _lease(js)
                assert held is not None and (held.holder, held.pid, held.ad_id) == ("w1", 101, "ad-1")
                assert held.taken_at == pytest.approx(clock.now(), abs=5)
                other, again = _Msg(), _Msg()
                async with w2.turn(other, "ad-2") as second:  # type: ignore[arg-type]
                    assert second is False  # w1 lives (its entry is pid 101): handed back, the gate not entered
                async with w1.turn(again, "ad-3") as third:  # type: ignore[arg-type]
                    assert third is False  # w1 runs ad-1 alone: not a second one beside it
                assert other.naks == [1.0] and again.naks == [1.0]
                assert not w2._gate.blocked  # noqa: SLF001 - w2 goes on with ordinary ads
            assert await _lease(js) is None  # released once ad-1 was settled

            async with w1.turn(_Msg(), "ad-4") as alone:  # type: ignore[arg-type]
                assert alone is True
            late = w1.turn(_Msg(), "ad-5")  # type: ignore[arg-type]
            assert await late.__aenter__() is True
            restarted = Registry(nc, js, settings.registry)  # w1 restarted under its id: its pid 101 died
            await restarted.put_over(_node("w1", 111), (await restarted.revision("w1"))[0])
            taken = w2.turn(_Msg(), "ad-6")  # type: ignore[arg-type]
            assert await taken.__aenter__() is True  # taken over from the dead process
            await late.__aexit__(None, None, None)  # its release, on the revision it took, deletes nothing of w2's
            assert (await _lease(js)).holder == "w2"  # type: ignore[union-attr]
            await taken.__aexit__(None, None, None)
            assert await _lease(js) is None

            async with w2.turn(_Msg(), "ad-7"):  # type: ignore[arg-type]
                store = await AdStore.open(nc, js)
                await recover(nc, store, _node("w1", 111), settings)  # another process's death: not its lease
                assert (await _lease(js)).holder == "w2"  # type: ignore[union-attr]
                await recover(nc, store, _node("w2", 202), settings)  # its holder's death: freed at once
                assert await _lease(js) is None
                async with _turns(settings, restarted, "w1", 111).turn(_Msg(), "ad-8") as next_one:  # type: ignore
                    assert next_one is True
        finally:
            await nc.close()

    asyncio.run(main())


@pytest.mark.timeout(60)
def test_a_nats_that_does_not_answer_runs_the_suspect_ad_alone_here_as_before(
    fresh_nats: Callable[[], EmbeddedNats],
) -> None:
    server = fresh_nats()
    settings = GameadSettings.model_validate({"nats": {"request_timeout": 0.5}})

    async def main() -> None:
        nc = await nats.connect(server.url)
        js = nc.jetstream()
        await ensure_topology(js, settings)
        registry = Registry(nc, js, settings.registry)
        await nc.close()  # NATS gone: reading the lease fails at once
        turns = SuspectTurns(settings, "w1", SoloGate(), Shield(), registry)
        msg = _Msg()
        async with turns.turn(msg, "ad-1") as alone:  # type: ignore[arg-type]
            assert alone is None and not msg.naks  # runs alone here, behind the gate, without the lease
            assert turns._gate.blocked  # noqa: SLF001

    asyncio.run(main())


@pytest.mark.timeout(60)
def test_a_holder_missing_from_a_registry_younger_than_its_ttl_keeps_the_lease(
    fresh_nats: Callable[[], EmbeddedNats],
) -> None:
    """attack53: ``kill -9`` of ``gamead up``'s nats-server while a suspect ad ran alone emptied the registry (a
    memory store) and another worker took the lease from the live holder at once: two suspect ads alone. While the
    registry bucket is younger than ``registry.ttl`` a missing holder may be live (the doctor's rule): handed back;
    once it is older, the holder's absence stands and the lease is taken over."""
    server = fresh_nats()
    settings = GameadSettings(registry={"ttl": 4, "heartbeat_interval": 1})

    async def main() -> None:
        nc = await nats.connect(server.url)
        try:
            js = nc.jetstream()
            await ensure_topology(js, settings)
            registry = Registry(nc, js, settings.registry)
            await registry.put(_node("w1", 101))
            w1 = _turns(settings, registry, "w1", 101)
            async with w1.turn(_Msg(), "ad-1") as alone:  # type: ignore[arg-type]
                assert alone is True
                await js.delete_key_value(names.REGISTRY_BUCKET)  # a restarted nats-server's empty memory store
                await ensure_topology(js, settings)
                fresh = Registry(nc, js, settings.registry)
                await fresh.put(_node("w2", 202))  # w2 beat first; w1 not yet
                w2 = _turns(settings, fresh, "w2", 202)
                msg = _Msg()
                async with w2.turn(msg, "ad-2") as second:  # type: ignore[arg-type]
                    assert second is False and msg.naks == [1.0]  # w1 may be live: it runs ad-1 alone
                assert (await _lease(js)).holder == "w1"  # type: ignore[union-attr]
                assert await _taken_within(w2, "ad-3")  # the bucket older than its ttl: w1's absence stands
        finally:
            await nc.close()

    asyncio.run(main())


@pytest.mark.timeout(90)
def test_a_release_that_found_nats_away_is_tried_again_once_it_is_back(
    fresh_nats: Callable[[], EmbeddedNats], caplog: pytest.LogCaptureFixture,
) -> None:
    """attack53: the release failed while nats-server restarted, and every suspect ad of the fleet (its holder's
    own too: "this worker runs ad-1 alone") was handed back for the lease's whole bound (138 s) while its holder
    ran nothing. The release is tried again every second: another worker takes the lease once NATS is back."""
    caplog.set_level(logging.INFO, logger=suspect_turn.__name__)
    server = fresh_nats()
    settings = GameadSettings.model_validate({"nats": {"request_timeout": 0.5}})

    async def main() -> None:
        nc = await nats.connect(server.url, max_reconnect_attempts=-1, reconnect_time_wait=0.2)
        try:
            js, registry, w1_node, w1, w2 = await _w1_registered(nc, settings)
            held = w1.turn(_Msg(), "ad-1")  # type: ignore[arg-type]
            assert await held.__aenter__() is True
            server.stop()
            await held.__aexit__(None, None, None)  # settled with NATS away: not released
            server.start()
            deadline = time.monotonic() + 30
            while True:  # the registry's memory store came back empty: the node beats again, as every node does
                try:
                    await ensure_topology(js, settings)
                    await registry.put(w1_node)
                    break
                except Exception:  # noqa: BLE001 - JetStream not ready yet after the restart
                    assert time.monotonic() < deadline
                    await asyncio.sleep(0.2)
            # w1's, live: the restart kept it, or deleted (never lost with the restart): its release tried again
            # (every second) was done before this look (load57: the restart and the node's beat took longer than a
            # second at load 35-52), or the release's delete, sent once the client had seen NATS go, was held in
            # nats-py's buffer and sent as it reconnected (load58: neither the lease nor the 'late' line)
            try:
                last = await js.get_last_msg(names.kv_stream(names.LEASES_BUCKET),
                                             f"$KV.{names.LEASES_BUCKET}.{names.SUSPECT_LEASE}")
                state = "deleted" if (last.headers or {}).get("KV-Operation") in ("DEL", "PURGE") else "live"
            except nats.js.errors.NotFoundError:
                state = "lost with the restart"
            assert state in ("live", "deleted"), (state, caplog.text)
            # well within the lease's bound of 138 s; w1 lives meanwhile: its heartbeat before each try
            assert await _taken_within(w2, "ad-2", before=lambda: registry.put(w1_node))
        finally:
            await close_for_good(nc)  # its server restarted (a restart that failed: bounded, closes52)

    asyncio.run(main())


@pytest.mark.timeout(60)
def test_a_worker_waiting_for_its_other_analyses_does_not_hold_the_lease_meanwhile(
    fresh_nats: Callable[[], EmbeddedNats],
) -> None:
    """lease54: the lease was taken before the worker's gate drained, so with an analysis hanging in another slot
    it was held unused up to ``worker.task_timeout`` and every other worker handed its suspect ads back meanwhile.
    Now the worker drains first: another worker's suspect ad takes the lease and runs; a suspect ad given to a
    worker while another holds it is handed back at once, its gate left open; the one that waited is handed back
    when it finds the lease taken, and runs alone once it is free."""
    server = fresh_nats()
    settings = GameadSettings()

    async def main() -> None:
        nc = await nats.connect(server.url)
        hang = asyncio.Event()
        try:
            js, w1, w2 = await _two_workers(nc, settings)
            gate = w1._gate  # noqa: SLF001 - the worker's gate its slots pass through

            async def hanging() -> None:  # an analysis in another slot of w1 that does not end
                async with gate.shared():
                    await hang.wait()

            async def turn(msg: _Msg, ad_id: str) -> bool | None:
                async with w1.turn(msg, ad_id) as alone:  # type: ignore[arg-type]
                    return alone

            other = asyncio.create_task(hanging())
            await until(lambda: gate.running == 1, what="w1's hanging analysis")
            waited = _Msg()
            waiting = asyncio.create_task(turn(waited, "ad-1"))
            await until(lambda: gate.blocked, what="w1's suspect ad waiting for its other analyses")

            taken = w2.turn(_Msg(), "ad-2")  # type: ignore[arg-type]
            assert await taken.__aenter__() is True  # not handed back while w1 waits (before: for task_timeout)
            assert (await _lease(js)).holder == "w2"  # type: ignore[union-attr]
            late = _Msg()  # w1 given another suspect ad meanwhile: handed back without waiting at its gate
            assert await asyncio.wait_for(turn(late, "ad-3"), 20) is False and late.naks == [1.0]
            assert not other.done()  # (still hanging)

            hang.set()
            await other
            assert await asyncio.wait_for(waiting, 20) is False and waited.naks == [1.0]  # the lease is w2's
            assert not gate.blocked and gate.running == 0  # w1 goes on with ordinary ads
            await taken.__aexit__(None, None, None)
            assert await _lease(js) is None
            assert await turn(_Msg(), "ad-1") is True  # its turn once the lease is free
        finally:
            hang.set()
            await nc.close()

    asyncio.run(main())


async def _lease_writes(js: Any, taken: bool) -> None:
    """The leases bucket's stream takes writes (``taken``) or refuses each one, a delete marker too: a 1-byte
    message size limit (the marker's headers exceed it). NATS answers, refusing: a release that fails, on demand."""
    config = (await js.stream_info(f"KV_{names.LEASES_BUCKET}")).config
    config.max_msg_size = -1 if taken else 1
    await js.update_stream(config)


@pytest.mark.timeout(120)
def test_a_newer_release_that_failed_while_an_older_one_was_retried_is_tried_again_too(
    fresh_nats: Callable[[], EmbeddedNats], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """poison55: a failed release was tried again by one task that kept the revision it began with. A newer turn
    of the same process (its own leftover taken over) whose release failed while that task slept was not tried:
    the older revision's delete lost to the newer one, the task ended, and the lease stayed until its bound (138 s)
    while every suspect ad of the fleet was handed back. Now the task tries the newest release that failed: another
    worker's suspect ad takes the lease within seconds."""
    every = 6.0  # the older try sleeps through both turns below (each a few NATS round trips)
    monkeypatch.setattr(suspect_turn, "RELEASE_EVERY", every)
    server = fresh_nats()
    settings = GameadSettings()

    async def main() -> None:
        nc = await nats.connect(server.url)
        try:
            js, registry, w1_node, w1, w2 = await _w1_registered(nc, settings)
            for ad_id in ("ad-1", "ad-2"):  # ad-2's turn takes over ad-1's lease, left by the failed release
                turn = w1.turn(_Msg(), ad_id)  # type: ignore[arg-type]
                assert await turn.__aenter__() is True
                await _lease_writes(js, taken=False)
                await turn.__aexit__(None, None, None)  # settled, the release refused: tried again later
                await _lease_writes(js, taken=True)
            lease = await _lease(js)
            assert lease is not None and lease.ad_id == "ad-2"
            # w1 lives meanwhile (its heartbeat before each try): only the release frees the lease before its bound
            assert await _taken_within(w2, "ad-3", seconds=4 * every, before=lambda: registry.put(w1_node)), (
                f"the lease taken for ad-2 was not released: {await _lease(js)}")
        finally:
            await nc.close()

    asyncio.run(main())
