"""Registry writes answered "no responders" are sent again within their timeout, as the queue's are (left44 item 3), on
a real nats-server.

A fresh replicated registry bucket whose stream has no leader yet answers a write "no responders" (nothing stored):
a heartbeat, a clean stop's delete mark or its mark under the id's earlier key failed at once, ``TopologyMissing``
(a fresh clone: test_registry_mark_busy's first mark, 1 of 3,965 tests). Here the registry's stream is taken away
and made again once a write's first such answer came (:func:`gamead_core.queue.acks.resends`), the same answer on
one server: each write lands.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import nats

from gamead_core.config import RegistrySettings
from gamead_core.embedded import EmbeddedNats
from gamead_core.queue import acks
from gamead_core.registry import Registry
from gamead_core.registry.kv import bucket_config
from tests.integration.test_node_views import worker_entry

ROOM = 30.0  #: seconds the registry's writes may wait for their ack (a loaded machine's stall is not the point)


def test_registry_writes_no_stream_took_yet_land_once_the_bucket_is_back(
        fresh_nats: Callable[[], EmbeddedNats]) -> None:
    """A heartbeat (``Registry.put``) and a clean stop (``Registry.stop``: its delete mark), each started while the
    registry's stream is missing: each is sent again and lands once the bucket is made (the mark under an id's
    earlier key goes through the same ``Registry._publish``; its read before it is not a write). Without the fix
    (kv.py of 41f8bf05: ``kv.put``, ``js.publish``): ``TopologyMissing`` ("no stream took the write") at the
    put's first answer."""
    server = fresh_nats()
    settings = RegistrySettings(ttl=20.0, heartbeat_interval=1.0)

    async def scenario() -> None:
        nc = await nats.connect(server.url)
        js = nc.jetstream()
        registry = Registry(nc, js, settings, timeout=ROOM)
        loop = asyncio.get_running_loop()

        async def landed_after_no_responders(write: Callable[[], Awaitable[None]]) -> None:
            await js.delete_stream(registry.stream)  # the bucket's stream gone: no stream takes a write
            before = acks.resends(js)
            task = asyncio.ensure_future(write())
            deadline = loop.time() + ROOM
            while acks.resends(js) == before and not task.done():
                assert loop.time() < deadline, "no registry write was answered 'no responders' and sent again"
                await asyncio.sleep(0.01)
            await js.create_key_value(bucket_config(settings))  # the bucket back (its leader elected)
            await task  # raised TopologyMissing before the fix

        try:
            await registry.open()
            await landed_after_no_responders(lambda: registry.put(worker_entry("w-beat")))
            assert [n.id for n in await registry.list()] == ["w-beat"]
            stopping = worker_entry("w-stop")
            await landed_after_no_responders(lambda: registry.stop(stopping))  # no gamead_stops here: logged only
            assert await registry.lookup("w-stop") == (None, True)  # its delete mark: a clean stop
            assert await registry.stopped(stopping)  # the mark names its process
        finally:
            await nc.close()

    asyncio.run(scenario())
