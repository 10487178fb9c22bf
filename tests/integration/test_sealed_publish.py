"""fixsubmit38 (attack38a F3, the same kind): JetStream's answers at the NATS boundary that say something of the
request or of this node, not that NATS is away, are not ``queue_unavailable``. A publish into a sealed work stream
(only a repartition seals one: a partition being removed) answered "JetStream refused the request: invalid
operation on sealed stream (code 10109)" as 503 ``queue_unavailable`` (and poked the storage probe); it is this
node's ``queue.partitions`` no longer fitting: ``topology_changed``. Real nats-server, real streams."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import nats
import pytest

from gamead_core import names
from gamead_core.config import GameadSettings
from gamead_core.embedded import EmbeddedNats
from gamead_core.errors import QueueUnavailable, TopologyChanged
from gamead_core.queue.publish import publish_ad
from gamead_core.queue.topology import ensure_topology


def test_a_publish_into_a_sealed_work_stream_is_topology_changed(fresh_nats: Callable[[], EmbeddedNats]) -> None:
    """Figure, before: ``QueueUnavailable('JetStream refused the request: invalid operation on sealed stream (code
    10109)')``."""
    url = fresh_nats().url

    async def play() -> None:
        nc = await nats.connect(url)
        try:
            js = nc.jetstream(timeout=5)
            await ensure_topology(js, GameadSettings())
            info = await js.stream_info(names.work_stream(0))
            await js.update_stream(info.config.evolve(sealed=True))
            with pytest.raises(TopologyChanged) as caught:
                await publish_ad(js, ad_id="01KSEALED00000000000000000", level=2, payload=b"{}", timeout=5.0)
            assert not isinstance(caught.value, QueueUnavailable)
            assert "sealed" in caught.value.message and caught.value.code == "topology_changed", caught.value
        finally:
            await nc.close()

    asyncio.run(play())
