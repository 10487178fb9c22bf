"""A compare-and-set write of a record answered "busy" is not taken for one that lost (fix34b item 1, attack33b).

On a replicated (R3) stream nats-server answers a write expecting a key's revision while another write of that key
is proposed and not applied yet with 10164 "wrong last sequence" (no number; since nats-server 2.11.0): not
decided. Before, every writer of records took it for "lost" (10071 "wrong last sequence: N", decided), and the
reaper's re-put so answered published nothing: the ad stayed ``queued`` without a work message until ``gamead doctor
--repair``. Played out on the real three-node cluster (tests/cluster.py) and, for the reaper's lost re-put read
again, on one server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import nats
import pytest

from gamead_core import names
from gamead_core.ad_ids import new_ad_id
from gamead_core.config import GameadSettings
from gamead_core.embedded import EmbeddedNats
from gamead_core.errors import StorageFailed
from gamead_core.models import AdRecord, AdStatus, utcnow
from gamead_core.queue.acks import Ack, publish_acked, publish_many
from gamead_core.queue.topology import ensure_topology
from gamead_core.registry import NodeInfo
from gamead_core.store import ads, cas
from gamead_core.store.ads import AdStore, encode, write_headers
from tests.cluster import NatsCluster, fresh_cluster
from tests.support import submission

ORIGIN = "api-busy:4343@2026-01-01T00:00:00+00:00"
DEAD = NodeInfo(id="api-busy", role="api", host="h", pid=4343, version="t", started_at=utcnow(),
                heartbeat_at=utcnow())
R3 = GameadSettings(queue={"replicas": 3})


async def _topology(js: Any, settings: GameadSettings) -> None:
    """gamead's topology, once the meta leader places it (right after a wipe its view of free storage lags)."""
    deadline = time.monotonic() + 30
    while True:
        try:
            await ensure_topology(js, settings)
            return
        except StorageFailed:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


async def _created(store: AdStore) -> tuple[AdRecord, int]:
    """A record created as an API creates it (with its origin), and its revision."""
    record = AdRecord(id=new_ad_id(), status=AdStatus.QUEUED, priority=2, submitted_at=utcnow(),
                      ad=submission(title="Busy key"))
    return record, await store.create(record, encode(record))


def _play(servers: str | list[str], settings: GameadSettings, game: Callable[[Any, AdStore], Any]) -> Any:
    async def go() -> Any:
        nc = await nats.connect(servers)
        try:
            js = nc.jetstream(timeout=5)
            await _topology(js, settings)
            store = await AdStore.open(nc, js)
            store.origin = ORIGIN
            return await game(js, store)
        finally:
            await nc.close()

    return asyncio.run(go())


@pytest.fixture
def cluster(nats_cluster: NatsCluster) -> NatsCluster:
    return fresh_cluster(nats_cluster)


def test_a_write_of_a_key_another_write_has_in_flight_is_busy_not_lost(cluster: NatsCluster) -> None:
    """Five writes of one R3 record, each expecting its revision, sent back to back: one lands, the others are
    answered while it is in flight (figure: 4 × 10164 "wrong last sequence", no number, on nats-server 2.15.1) and
    are told busy, not lost (before: lost); a write expecting that revision once the first is applied is lost
    (10071 naming the new revision). A refusal that came after the first write applied (a loaded machine) is lost,
    as it should be: up to 5 keys are tried until one shows a busy answer."""

    async def game(js: Any, store: AdStore) -> list[tuple[list[Any], Any]]:
        rounds = []
        for _ in range(5):
            record, revision = await _created(store)
            subject = names.kv_subject(names.ADS_BUCKET, record.id)
            write = (subject, encode(record), write_headers(revision, None))
            answers = await publish_many(js, [write] * 5, timeout=5)
            rounds.append((answers, (await publish_many(js, [write], timeout=5))[0]))
            if any(cas.verdict(a) == cas.BUSY for a in answers):
                break
        return rounds

    for answers, late in _play(cluster.servers, R3, game):
        landed = [a for a in answers if isinstance(a, Ack)]
        refused = [a for a in answers if not isinstance(a, Ack)]
        assert len(landed) == 1 and len(refused) == 4, answers
        assert all(cas.verdict(a) in (cas.BUSY, cas.LOST) for a in refused), answers
        assert all(not ads._lost(a) for a in refused if a.err_code == 10164), answers
        assert cas.verdict(late) == cas.LOST and ads._lost(late), late
        assert late.description == f"wrong last sequence: {landed[0].seq}", late.description
    assert any(cas.verdict(a) == cas.BUSY for a in answers), "no write met another in flight in 5 tries"


def _hooked(js: Any, between: Callable[[], Any]) -> Any:
    """The reaper's JetStream context, the real one, but ``between`` runs once, after its first read of a record:
    a write lands (or is in flight) between the reaper's read and its re-put."""

    class Hooked:
        def __getattr__(self, name: str) -> Any:
            return getattr(js, name)

        async def get_last_msg(self, *args: Any, **kwargs: Any) -> Any:
            read = await js.get_last_msg(*args, **kwargs)
            nonlocal between
            step, between = between, None
            if step is not None:
                await step()
            return read

    return Hooked()


def _late_re_put(servers: str | list[str], settings: GameadSettings, *, in_flight: bool) -> tuple[Any, str, int]:
    """The dead API's create read by the reaper, then its own earlier re-put (a round whose answer did not come)
    lands (``in_flight``: sent, not awaited: on R3 the reaper's write meets it in flight, busy) before the
    reaper's re-put of this round: the report, the record's status and the work messages stored."""
    from gamead_core.worker.orphan_queue import queue_again

    async def game(js: Any, store: AdStore) -> tuple[Any, str, int]:
        record, revision = await _created(store)
        pending: list[Any] = []

        async def earlier_re_put() -> None:
            future = await publish_acked(js, names.kv_subject(names.ADS_BUCKET, record.id), encode(record),
                                         headers=write_headers(revision, None), timeout=5)
            pending.append(future) if in_flight else await future

        report = await queue_again(_hooked(js, earlier_re_put), DEAD, ORIGIN, [(record.id, revision, utcnow())],
                                    settings)
        await asyncio.gather(*pending)
        status = (await store.get(record.id, consistent=True)).record.status.value
        return report, status, int((await js.stream_info(names.ADS_STREAM)).state.messages)

    return _play(servers, settings, game)


def test_a_re_put_in_flight_when_the_reaper_writes_on_r3_still_gets_the_ad_queued(cluster: NatsCluster) -> None:
    """The reaper's earlier re-put in flight when this round's re-put reaches the R3 leader (answered busy, or lost
    once it applied): before, nothing was published (figure: 0 messages, the record ``queued`` without one, left
    to ``gamead doctor --repair``); now the record's message is stored, once."""
    report, status, messages = _late_re_put(cluster.servers, R3, in_flight=True)
    assert (status, messages, report.republished, report.changed) == ("queued", 1, 1, 0), report


def test_a_lost_re_put_that_finds_a_re_put_publishes_it(fresh_nats: Callable[[], EmbeddedNats]) -> None:
    """One server: the reaper's earlier re-put landed between its read and its write, so this round's loses
    (10071): the key read again holds a re-put, without a message yet; before, nothing was published (figure: 0
    messages); now one."""
    report, status, messages = _late_re_put(fresh_nats().url, GameadSettings(), in_flight=False)
    assert (status, messages, report.republished, report.changed) == ("queued", 1, 1, 0), report
