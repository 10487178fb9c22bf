"""The JetStream topology is created idempotently and an incompatible one is refused clearly."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import nats
from nats.js.api import RetentionPolicy, StreamConfig

from gamead_core import names
from gamead_core.config import GameadSettings
from gamead_core.embedded import EmbeddedNats
from gamead_core.errors import QueueFull
from gamead_core.queue.publish import publish_ad
from gamead_core.queue.topology import ensure_topology
from tests.support import clean_env, run_gamead


def test_topology_is_created_once_and_then_left_alone(fresh_nats: Callable[[], EmbeddedNats]) -> None:
    server = fresh_nats()

    async def run() -> tuple[object, object, int]:
        nc = await nats.connect(server.url)
        js = nc.jetstream()
        first = await ensure_topology(js, GameadSettings())
        second, third = await asyncio.gather(ensure_topology(js, GameadSettings()), ensure_topology(js, GameadSettings()))
        consumers = len(await js.consumers_info(names.ADS_STREAM))
        await nc.close()
        return first, (second, third), consumers

    first, again, consumers = asyncio.run(run())
    # 3 streams (work, DLQ, audit), 5 level consumers, 7 buckets (ads, registry, leases, scaling, health, jobs, stops)
    assert len(first.created) == 15
    assert all(not r.created and not r.updated for r in again)
    assert consumers == 5


def test_a_worker_refuses_an_incompatible_stream_with_one_clear_line(fresh_nats: Callable[[], EmbeddedNats]) -> None:
    server = fresh_nats()

    async def squat() -> None:
        nc = await nats.connect(server.url)
        await nc.jetstream().add_stream(
            StreamConfig(name=names.ADS_STREAM, subjects=["gamead.ads.*"], retention=RetentionPolicy.LIMITS)
        )
        await nc.close()

    asyncio.run(squat())
    done = run_gamead("worker", env=clean_env(GAMEAD_NATS__URL=server.url), timeout=60)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "retention" in errors[0] and names.ADS_STREAM in errors[0]


def test_compatible_limit_changes_are_applied_in_place_and_a_full_stream_is_queue_full(
    fresh_nats: Callable[[], EmbeddedNats]
) -> None:
    server = fresh_nats()

    async def run() -> tuple[object, object, object, str]:
        nc = await nats.connect(server.url)
        js = nc.jetstream()
        await ensure_topology(js, GameadSettings())
        for i in range(3):
            await publish_ad(js, ad_id=f"ad{i}", level=3, payload=b"x" * 500, timeout=2)
        held = (await js.stream_info(names.ADS_STREAM)).state.bytes
        # a lowering is made only with the operator's word (README: Topology; test_topology_drift.py)
        report = await ensure_topology(js, GameadSettings(queue={"max_msgs": 10, "max_bytes": held + 10,
                                                                 "lower_limits": True}))
        config = (await js.stream_info(names.ADS_STREAM)).config
        try:
            await publish_ad(js, ad_id="one-too-many", level=3, payload=b"x" * 500, timeout=2)
        except QueueFull as exc:
            refused = exc.message
        else:
            refused = "accepted"
        await nc.close()
        return report.updated, (config.max_msgs, config.max_bytes), held, refused

    updated, limits, held, refused = asyncio.run(run())
    assert updated == (f"stream {names.ADS_STREAM}",)
    assert limits == (10, held + 10)  # type: ignore[operator]
    assert refused.startswith(f"work stream {names.ADS_STREAM} (partition 0) is full: maximum bytes exceeded")
