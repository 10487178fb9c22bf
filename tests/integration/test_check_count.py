"""A write check's message in a work stream is no queued ad (newcomer55 F1), on a real nats-server.

A new operator ran ``gamead doctor`` six times on an idle stack: ``gamead top`` then said ``queued 0.10 ads/s``
and the autoscaler ``arriving 0.10 ads/s`` with no ad sent. Each run's ``store_unwritable`` probe
(:func:`~gamead_core.queue.write_check.writes_stored`, also an API's storage probe while a write failure is held)
stores one message in each work stream, and ``submittedPerSec`` was the streams' growth."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from types import SimpleNamespace

import nats
import pytest

from gamead_core import names
from gamead_core.config import load_settings
from gamead_core.embedded import EmbeddedNats
from gamead_core.queue.check_count import read_checks
from gamead_core.queue.topology import ensure_topology
from gamead_core.queue.write_check import writes_stored
from gamead_core.stats import QueueSampler


@pytest.fixture
def server(fresh_nats: Callable[[], EmbeddedNats]) -> EmbeddedNats:
    return fresh_nats()


@pytest.mark.parametrize("partitions", [1, 3])
def test_write_checks_are_not_counted_as_queued_ads(server: EmbeddedNats, partitions: int) -> None:
    async def run() -> tuple[int, int, int]:
        nc = await nats.connect(server.url)
        try:
            js = nc.jetstream(timeout=2)
            settings = load_settings(None, queue={"partitions": partitions})
            await ensure_topology(js, settings)
            sampler = QueueSampler(SimpleNamespace(nc=nc, js=js, last_error=None), settings, node_id="t-api")
            first = await sampler.sample()
            for _ in range(3):  # three `gamead doctor` runs' probes
                assert await writes_stored(js, partitions, 2.0) == []
            checks = await sampler.sample()
            await js.publish(names.level_subject(3, partitions - 1), b"an ad", stream=names.work_stream(partitions - 1))
            ad = await sampler.sample()
            assert first.submitted is not None and checks.submitted is not None and ad.submitted is not None
            return checks.submitted - first.submitted, ad.submitted - checks.submitted, await read_checks(js)
        finally:
            await nc.close()

    after_checks, after_ad, counted = asyncio.run(run())
    assert after_checks == 0, f"3 write checks counted as {after_checks} queued ad(s)"
    assert counted == 3 * partitions, "each check counted its work-stream writes"
    assert after_ad == 1, "an ad queued is still counted"


def test_a_check_counted_before_its_write_holds_the_count_and_never_lowers_it() -> None:
    """The pure rule: a check counted before its message is stored holds the sequence; a stream recreated
    starts again; an unread counter keeps the last one read."""
    from gamead_core.stats.queued import queued_sequence

    s = queued_sequence(100, 10, None)
    assert s == (100, 10, 90)
    s = queued_sequence(100, 11, s)  # counted, not stored yet: held, not lowered
    assert s[2] == 90
    s = queued_sequence(102, 11, s)  # its message and one ad
    assert s[2] == 91
    s = queued_sequence(105, None, s)  # counter unread: the last one read stands
    assert s == (105, 11, 94)
    assert queued_sequence(3, 11, s)[2] == 0  # stream recreated
