"""The repartition guard reads the registry, never makes its bucket (review43 F4), on one nats-server.

:func:`~gamead_core.queue.repartition_guard.refuse_live_old_nodes` checks that the registry bucket exists, then lists
it. Its listing went through ``Registry.open()``, which creates the bucket: one lost between the two (a restarted
nats-server's memory store) was made again by the starting process, with its own ``registry.ttl``, and the check
passed on an empty listing. Here the bucket's stream is deleted right after the guard's check answered.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import nats
import nats.js.errors
import pytest

from gamead_core import names
from gamead_core.config import GameadSettings
from gamead_core.embedded import EmbeddedNats
from gamead_core.errors import PartitionsChanged, TopologyMissing
from gamead_core.queue.repartition_guard import refuse_live_old_nodes
from gamead_core.registry import Registry


class _LostAfterCheck:
    """The real JetStream context, but the registry's stream is deleted right after a look at it answered."""

    def __init__(self, js: Any) -> None:
        self._js = js

    def __getattr__(self, name: str) -> Any:
        return getattr(self._js, name)

    async def stream_info(self, name: str, *args: Any, **kwargs: Any) -> Any:
        info = await self._js.stream_info(name, *args, **kwargs)
        if name == names.kv_stream(names.REGISTRY_BUCKET):
            await self._js.delete_stream(name)
        return info


def test_a_bucket_lost_between_the_check_and_the_listing_is_refused_not_made(
        fresh_nats: Callable[[], EmbeddedNats]) -> None:
    """The registry bucket (made with ttl 2 s) is lost right after the guard saw it: the start is refused (nothing
    changed, the listing failed) and no bucket is left. Without the fix (``registry.list()`` creating it): no
    refusal, and a bucket made with the start's ``registry.ttl`` (10 s) is left."""
    server = fresh_nats()
    settings = GameadSettings(queue={"partitions": 1})

    async def scenario() -> tuple[BaseException | None, bool]:
        nc = await nats.connect(server.url)
        js = nc.jetstream()
        try:
            await Registry(nc, js, GameadSettings(registry={"ttl": 2.0, "heartbeat_interval": 0.5}).registry).open()
            refused: BaseException | None = None
            try:
                await refuse_live_old_nodes(_LostAfterCheck(js), settings, 1)  # type: ignore[arg-type]
            except PartitionsChanged as exc:
                refused = exc
            try:
                await js.stream_info(names.kv_stream(names.REGISTRY_BUCKET))
                made = True
            except nats.js.errors.NotFoundError:
                made = False
            return refused, made
        finally:
            await nc.close()

    refused, made = asyncio.run(scenario())
    assert not made, "the guard made the registry bucket"
    assert refused is not None and "could not be read" in str(refused), refused


def test_a_listing_that_may_not_create_says_the_bucket_is_missing(fresh_nats: Callable[[], EmbeddedNats]) -> None:
    """``Registry.list(create=False)`` without a bucket: ``TopologyMissing`` naming it, and no bucket made."""
    server = fresh_nats()

    async def scenario() -> None:
        nc = await nats.connect(server.url)
        js = nc.jetstream()
        try:
            with pytest.raises(TopologyMissing, match="no registry bucket"):
                await Registry(nc, js, GameadSettings().registry).list(create=False)
            with pytest.raises(nats.js.errors.NotFoundError):
                await js.stream_info(names.kv_stream(names.REGISTRY_BUCKET))
        finally:
            await nc.close()

    asyncio.run(scenario())
