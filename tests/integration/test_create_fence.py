"""An API's settling of a create without an answer and the reaper's queuing of it again never both win (attack33b
F1): each writes the record by compare-and-set over the revision it read (gamead_core.store.create_fence,
gamead_core.worker.orphans). The interleavings, each played out on a real nats-server in the order named: the
API's read and delete between the reaper's read and its write; the reaper's write before the API's read; the API's
marker before its own late create."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import nats
import pytest

from gamead_core import names
from gamead_core.config import GameadSettings
from gamead_core.embedded import EmbeddedNats
from gamead_core.errors import NotFound
from gamead_core.models import AdRecord, AdStatus, utcnow
from gamead_core.queue.topology import ensure_topology
from gamead_core.registry import NodeInfo
from gamead_core.store.ads import AdStore, encode
from gamead_core.unsettled import Unsettled
from tests.support import submission

ORIGIN = "api-fence:4242@2026-01-01T00:00:00+00:00"
SETTINGS = GameadSettings()
DEAD = NodeInfo(id="api-fence", role="api", host="h", pid=4242, version="t", started_at=utcnow(),
                heartbeat_at=utcnow())


class _ApiBetween:
    """The reaper's JetStream context, the real one, but after each of its reads of a record the API's settling
    runs a round (``between``): the API's read and delete land between the reaper's read and its write."""

    def __init__(self, js: Any, between: Callable[[], Any]) -> None:
        self._js, self._between = js, between

    def __getattr__(self, name: str) -> Any:
        return getattr(self._js, name)

    async def get_last_msg(self, *args: Any, **kwargs: Any) -> Any:
        read = await self._js.get_last_msg(*args, **kwargs)
        await self._between()
        return read

    async def get_msg(self, *args: Any, **kwargs: Any) -> Any:  # the reaper's read before the fix
        read = await self._js.get_msg(*args, **kwargs)
        await self._between()
        return read


async def _settled(unsettled: Unsettled) -> None:
    """Wait (a deadline) until ``unsettled`` has nothing pending."""
    deadline = asyncio.get_running_loop().time() + 20
    while len(unsettled):
        assert asyncio.get_running_loop().time() < deadline, "the API's settling did not end"
        await asyncio.sleep(0.05)


async def _messages(js: Any) -> int:
    return int((await js.stream_info(names.ADS_STREAM)).state.messages)


async def _status(store: AdStore, ad_id: str) -> str | None:
    try:
        return (await store.get(ad_id, consistent=True)).record.status.value
    except NotFound:
        return None


async def _created(store: AdStore, title: str) -> tuple[AdRecord, int]:
    """A record created as the API creates it (its origin), and its revision (the reaper's find)."""
    from gamead_core.ad_ids import new_ad_id

    record = AdRecord(id=new_ad_id(), status=AdStatus.QUEUED, priority=2, submitted_at=utcnow(),
                      ad=submission(title=title))
    return record, await store.create(record, encode(record))


def _play(url: str, game: Callable[[Any, AdStore, Unsettled], Any]) -> Any:
    async def go() -> Any:
        nc = await nats.connect(url)
        try:
            js = nc.jetstream()
            await ensure_topology(js, SETTINGS)
            store = await AdStore.open(nc, js)
            store.origin = ORIGIN
            unsettled = Unsettled(js, store, timeout=2.0)
            try:
                return await game(js, store, unsettled)
            finally:
                await unsettled.close()
        finally:
            await nc.close()

    return asyncio.run(go())


@pytest.fixture
def server(fresh_nats: Callable[[], EmbeddedNats]) -> EmbeddedNats:
    return fresh_nats()


def test_an_api_that_withdraws_its_create_between_the_reapers_read_and_write_leaves_nothing_queued(
        server: EmbeddedNats) -> None:
    """The API's delete lands after the reaper read the record and before it wrote anything: before, the reaper
    published its message anyway (the record gone: the ad 404, "not queued", and a worker would create it from the
    message and analyse it). Now the reaper's compare-and-set loses and nothing is published."""
    from gamead_core.worker.orphan_queue import queue_again

    async def game(js: Any, store: AdStore, unsettled: Unsettled) -> tuple[Any, str | None, int]:
        record, revision = await _created(store, "Withdrawn first")

        async def api_round() -> None:
            unsettled.record_maybe_created(record.id)
            await _settled(unsettled)

        report = await queue_again(_ApiBetween(js, api_round), DEAD, ORIGIN, [(record.id, revision, utcnow())],
                                    SETTINGS)
        return report, await _status(store, record.id), await _messages(js)

    report, status, messages = _play(server.url, game)
    assert (status, messages, report.republished) == (None, 0, 0), report


def test_a_record_the_reaper_queued_first_is_left_by_its_api_and_runs(server: EmbeddedNats) -> None:
    """The reaper's write lands first (it queued the record: its message is stored): the API's settling, which
    before deleted it whatever it was, finds it someone else's and leaves it, queued, with its message."""
    from gamead_core.worker.orphan_queue import queue_again

    async def game(js: Any, store: AdStore, unsettled: Unsettled) -> tuple[Any, str | None, int]:
        record, revision = await _created(store, "Queued by the reaper")
        report = await queue_again(js, DEAD, ORIGIN, [(record.id, revision, utcnow())], SETTINGS)
        unsettled.record_maybe_created(record.id)
        await _settled(unsettled)
        return report, await _status(store, record.id), await _messages(js)

    report, status, messages = _play(server.url, game)
    assert (report.republished, status, messages) == (1, "queued", 1), report


def test_an_api_create_landing_after_its_withdrawal_creates_nothing(server: EmbeddedNats) -> None:
    """The create lands after the settling's delete marker (it expected the key empty): the create-only put is
    refused, so no record is left for the reaper to queue."""
    from gamead_core.ad_ids import new_ad_id

    async def game(js: Any, store: AdStore, unsettled: Unsettled) -> tuple[list[Any], str | None]:
        record = AdRecord(id=new_ad_id(), status=AdStatus.QUEUED, priority=2, submitted_at=utcnow(),
                          ad=submission(title="Landed late"))
        unsettled.record_maybe_created(record.id)
        await _settled(unsettled)
        late = await store.create_many([record], [encode(record)])  # the create, as the API sent it, late
        return late, await _status(store, record.id)

    late, status = _play(server.url, game)
    assert status is None and not isinstance(late[0], int), late
