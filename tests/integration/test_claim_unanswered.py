"""A worker's id claim on a registry that does not answer its key's read yet, on a real nats-server.

The claim (:mod:`gamead_core.registry.claim`) is a worker's first registry call. On a 3-node cluster a bucket just
made has no stream leader for a moment and a read of it is answered "no responders": the worker ended at once
(``error: JetStream did not answer``, exit 3; a fresh clone's test_replica_behind, 1 of 4,023). Here the registry's
stream is taken away (a direct get of a missing stream is answered the same way) as the claim begins."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import nats

from gamead_core.config import RegistrySettings
from gamead_core.embedded import EmbeddedNats
from gamead_core.registry import Registry
from gamead_core.registry.claim import claim
from tests.integration.test_node_views import worker_entry


def test_a_claim_reads_again_while_the_registry_does_not_answer(fresh_nats: Callable[[], EmbeddedNats]) -> None:
    """The registry's stream gone as the claim begins: its first read is answered "no responders"; read again
    (the registry makes its bucket again after a failed call, as after a NATS restart) the key is free and the
    claim returns, the bucket back. Without the fix (claim.py of 2e581a9c) the claim raised ``QueueUnavailable``
    ("JetStream did not answer") at its first read: the worker's start ended."""
    server = fresh_nats()
    settings = RegistrySettings(ttl=10.0, heartbeat_interval=1.0)

    async def scenario() -> None:
        nc = await nats.connect(server.url)
        js = nc.jetstream()
        try:
            registry = Registry(nc, js, settings)
            await registry.open()
            await js.delete_stream(registry.stream)
            await asyncio.wait_for(claim(registry, worker_entry("w-claim"), interval=1.0, ttl=10.0), timeout=30.0)
            assert (await js.stream_info(registry.stream)).config.name == registry.stream
        finally:
            await nc.close()

    asyncio.run(scenario())
