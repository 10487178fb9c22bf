"""A node left running on an old ``queue.partitions`` with no live registry entry: what a repartition can still meet.

A repartition start is refused while the registry lists a live node on another setting (attack42b F1:
:mod:`gamead_core.queue.repartition_guard`). A node it does not see is one frozen (SIGSTOP) past ``registry.ttl``:
its entry expired, and it resumes after the change. :func:`unlisted` makes one, so that the tests of what guards the
ads and the fleet against such a node (sealed streams, ``topology_changed``, a worker's exit 5) still meet it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import nats

from gamead_core.config import RegistrySettings
from gamead_core.registry import Registry
from tests.support import frozen, wait_for

#: the environment of a node to be :func:`unlisted`: its entry expires 2 s after its last beat (when it is the first
#: node on its NATS: the first makes the registry bucket, with its ``registry.ttl``)
SHORT_TTL = {"GAMEAD_REGISTRY__TTL": "2", "GAMEAD_REGISTRY__HEARTBEAT_INTERVAL": "0.5"}


def registry_pids(url: str, token: str | None = None) -> set[int]:
    """The PIDs of the nodes the registry of the NATS at ``url`` lists (live entries)."""
    async def run() -> set[int]:
        nc = await nats.connect(url, token=token)
        try:
            return {n.pid for n in await Registry(nc, nc.jetstream(timeout=5), RegistrySettings()).list()}
        finally:
            await nc.close()

    return asyncio.run(run())


@contextlib.contextmanager
def unlisted(url: str, *pids: int, token: str | None = None, timeout: float = 60.0) -> Iterator[None]:
    """The processes ``pids`` (the test's own) frozen (SIGSTOP) until the registry at ``url`` lists none of them (their
    entries expired: ``registry.ttl`` after their last beat), and resumed (SIGCONT) on the way out of the block."""
    with contextlib.ExitStack() as stack:
        for pid in pids:
            stack.enter_context(frozen(pid))
        wait_for(lambda: not registry_pids(url, token) & set(pids), timeout=timeout, interval=0.2,
                 what=f"the registry entries of {pids} to expire")
        yield
