"""A clean stop's delete mark under an id's earlier key that meets another write of that key in flight (review43 F2).

:meth:`Registry.delete` of an id whose key an older gamead made otherwise (``w_1``: ``w=5f1`` now, ``w_1`` before)
also marks the earlier key, by a compare-and-set on what it read there, "lost (no error) to a write there between
its read and its publish". On an R3 registry such a write still in flight is answered 10164 (busy, not decided:
:mod:`gamead_core.queue.cas_answer`), which came out as ``StillBusy``: the whole delete raised although the id's
own mark was written, and the stopping node logged "could not remove heartbeat ... (the ttl will)". Played on the
real three-node cluster (tests/cluster.py), as tests/integration/test_cas_busy.py plays a record's busy write."""

from __future__ import annotations

import asyncio
from typing import Any

import nats
import nats.js.errors
import pytest

from gamead_core.config import RegistrySettings
from gamead_core.queue import cas_answer
from gamead_core.registry import Registry
from tests.cluster import NatsCluster, fresh_cluster
from tests.waits import until


@pytest.fixture
def cluster(nats_cluster: NatsCluster) -> NatsCluster:
    return fresh_cluster(nats_cluster)


class _Raced:
    """The registry's JetStream context, the real one, but after each read of a key's last message (the mark's
    compare-and-set reads the earlier key first) a write of that key is sent and not awaited: in flight when the
    mark follows."""

    def __init__(self, js: Any, nc: Any) -> None:
        self._js, self._nc = js, nc

    def __getattr__(self, name: str) -> Any:
        return getattr(self._js, name)

    async def get_last_msg(self, stream: str, subject: str, **kwargs: Any) -> Any:
        try:
            return await self._js.get_last_msg(stream, subject, **kwargs)
        finally:
            await self._nc.publish(subject, b"")  # a plain publish, stored by the stream: not waited for


class _Watched(Registry):
    """The real registry, keeping the verdicts of its refused writes (every one goes through ``_publish``)."""

    verdicts: list[str]

    async def _publish(self, key: str, payload: bytes, headers: dict[str, str]) -> Any:
        try:
            return await super()._publish(key, payload, headers)
        except nats.js.errors.APIError as exc:
            self.verdicts.append(cas_answer.verdict(exc))
            raise


async def _led(nc: Any, stream: str) -> bool:
    """Whether ``stream`` has a leader (an R3 stream just made has none for a moment: a write then meets no stream)."""
    info = await nc.jetstream(timeout=5).stream_info(stream)
    return info.cluster is not None and info.cluster.leader is not None


def test_a_mark_meeting_a_write_in_flight_under_the_earlier_key_is_no_error(cluster: NatsCluster) -> None:
    """Up to 8 ids ``w_<n>`` deleted on an R3 registry, each mark under the earlier key racing a write in flight
    there: every delete returns (the id's own mark written; the earlier one lost to the write, as the docstring
    says), until one met a busy answer. Without the fix: the delete that met one raised StillBusy."""

    async def go() -> list[Any]:
        nc = await nats.connect(cluster.servers)
        try:
            raced = _Raced(nc.jetstream(timeout=5), nc)
            registry = _Watched(nc, raced, RegistrySettings(), replicas=3, timeout=5)  # type: ignore[arg-type]
            registry.verdicts = []
            await registry.open()  # a fresh R3 bucket: its stream has no leader for a moment, a write meets none
            await until(lambda: _led(nc, registry.stream), timeout=30, what="the registry stream's leader")
            for n in range(8):
                await registry.delete(f"w_{n}", f"w_{n}:7@2026-01-01T00:00:00+00:00")
                if cas_answer.BUSY in registry.verdicts:
                    break
            return registry.verdicts
        finally:
            await nc.close()

    verdicts = asyncio.run(go())
    assert cas_answer.BUSY in verdicts, f"no mark met a write in flight in 8 tries: {verdicts}"
