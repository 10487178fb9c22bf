"""A head read's consumer counts (gamead_core.queue.consumer_counts, cpu60) say what nats-py's ``consumer_info``
says, on a real nats-server, and fail as it fails: a missing consumer or stream ``NotFoundError`` (the puller's
"level cannot be read"), no stream service ``ServiceUnavailableError``."""

from __future__ import annotations

from typing import Any, Callable

import pytest
from nats.js.api import AckPolicy, ConsumerConfig
from nats.js.errors import NotFoundError, ServiceUnavailableError

from gamead_core import names
from gamead_core.config import GameadSettings
from gamead_core.queue.consumer_counts import consumer_counts
from gamead_core.queue.depth import level_depth
from gamead_core.queue.topology import ensure_topology
from tests.support import on_js


def _same(counts: Any, info: Any) -> None:
    assert counts.num_pending == info.num_pending
    assert counts.num_ack_pending == info.num_ack_pending
    assert counts.num_redelivered == info.num_redelivered
    assert counts.delivered_seq == info.delivered.stream_seq
    assert counts.ack_floor_seq == info.ack_floor.stream_seq


def test_counts_are_consumer_info_s_numbers_and_its_errors(fresh_nats: Callable[[], Any]) -> None:
    async def run(js: Any) -> None:
        await js.add_stream(name="S", subjects=["s.>"])
        await js.add_consumer("S", ConsumerConfig(durable_name="c", filter_subject="s.a",
                                                  ack_policy=AckPolicy.EXPLICIT))
        _same(await consumer_counts(js, "S", "c"), await js.consumer_info("S", "c"))  # nothing yet: all 0
        for n in range(6):
            await js.publish("s.a", str(n).encode())
        sub = await js.pull_subscribe_bind("c", "S")
        got = await sub.fetch(3, timeout=2)
        await got[0].ack_sync()
        # a nak sent as a request: nats-server answers it once it took it (a plain nak's publish, even flushed,
        # may still wait in the consumer's ack queue when the next pull is served: the next new one came first)
        await js._nc.request(got[1].reply, b"-NAK", timeout=5)
        again = await sub.fetch(1, timeout=2)  # the nak'ed one, delivered twice
        assert again[0].metadata.num_delivered == 2
        counts, info = await consumer_counts(js, "S", "c"), await js.consumer_info("S", "c")
        _same(counts, info)
        assert (counts.num_pending, counts.num_ack_pending, counts.num_redelivered) == (3, 2, 1)
        assert (counts.delivered_seq, counts.ack_floor_seq) == (3, 1)
        with pytest.raises(NotFoundError):
            await consumer_counts(js, "S", "missing")
        with pytest.raises(NotFoundError):
            await consumer_counts(js, "NOSTREAM", "c")
        elsewhere = js._nc.jetstream(prefix="$NOBODY.API")  # no responders: what nats-py's call raises too
        with pytest.raises(ServiceUnavailableError):
            await consumer_counts(elsewhere, "S", "c")
        with pytest.raises(ServiceUnavailableError):
            await elsewhere.consumer_info("S", "c")

    on_js(fresh_nats().url, run)


def test_a_level_s_depth_reads_the_counts(fresh_nats: Callable[[], Any]) -> None:
    async def run(js: Any) -> None:
        await ensure_topology(js, GameadSettings())
        for n in range(4):
            await js.publish(names.level_subject(2), b"{}", headers={names.HDR_MSG_ID: f"m{n}"})
        depth = await level_depth(js, 2, 1e10)
        assert (depth.level, depth.pending, depth.ack_pending, depth.delivered_seq) == (2, 4, 0, 0)
        assert depth.oldest_age is not None and depth.oldest_age > 0
        await js.delete_consumer(names.ADS_STREAM, names.level_consumer(2))
        with pytest.raises(NotFoundError):
            await level_depth(js, 2, 1e10)

    on_js(fresh_nats().url, run)
