"""attack40a F7: a registry entry naming a node id no gamead makes is refused when read, so no subject or key is
ever built from it.

Figure, before: one entry with a 5,000-character id (written with the NATS credentials, as any client holding them
can) was listed as a node; once it stopped being refreshed, its "death" put the id into a subject and nats-server
closed the connection of the API and of the worker holding the reaper lease ("maximum control line exceeded"), both
exit 3; one whose id held U+200B (its key ``fake-0``, not the id's) was reaped as expired while being refreshed.
Now `Registry.list` lists only entries whose id fits ``NODE_ID_PATTERN``; the API's own id always does."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

import nats
import pytest
from pydantic import ValidationError

from gamead_core import names
from gamead_core.config import GameadSettings
from gamead_core.embedded import EmbeddedNats
from gamead_core.models import utcnow
from gamead_core.queue.topology import ensure_topology
from gamead_core.registry import NodeInfo, Registry
from gamead_core.registry.nodes import new_api_node_id


def _entry(node_id: str) -> bytes:
    good = NodeInfo(id="local-1", role="worker", host="h", pid=5, version="t", started_at=utcnow(),
                    heartbeat_at=utcnow())
    return good.model_dump_json(by_alias=True).replace('"local-1"', f'"{node_id}"').encode()


def test_entries_with_ids_no_gamead_makes_are_not_listed(fresh_nats: Callable[[], EmbeddedNats]) -> None:
    settings = GameadSettings()

    async def go() -> list[str]:
        nc = await nats.connect(fresh_nats().url)
        try:
            js = nc.jetstream()
            await ensure_topology(js, settings)
            registry = Registry(nc, js, settings.registry)
            await registry.put(NodeInfo(id="local-1", role="worker", host="h", pid=5, version="t",
                                        started_at=utcnow(), heartbeat_at=utcnow()))
            kv = await js.key_value(names.REGISTRY_BUCKET)
            await kv.put("fake-0", _entry("Z" * 5000))
            await kv.put("fake-1", _entry("W\\u200bZ"))  # a zero-width space in the id
            await kv.put("fake-2", _entry("a b*>"))
            return [n.id for n in await registry.list()]
        finally:
            await nc.close()

    assert asyncio.run(go()) == ["local-1"]


def test_a_node_id_out_of_the_pattern_is_refused_and_the_apis_own_always_fits(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError):
        NodeInfo(id="Z" * 5000, role="api", host="h", pid=1, version="t", started_at=utcnow(), heartbeat_at=utcnow())
    monkeypatch.setattr(socket, "gethostname", lambda: "höst name" + "x" * 400)
    api_id = new_api_node_id()
    NodeInfo(id=api_id, role="api", host="h", pid=1, version="t", started_at=utcnow(), heartbeat_at=utcnow())
    assert api_id.startswith("api-h_st_namexxx") and len(api_id) <= 255
