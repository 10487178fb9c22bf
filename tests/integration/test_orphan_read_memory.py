"""review42b F4: perf42 made the reaper's look read each record's sequence from its reply subject and build
``msg.metadata`` (its write time) only for the hits, at the end; to do so it kept every hit's whole message (its
subject, reply and headers) until the end of the read: ~900 B a hit against ~400 B before (tracemalloc, 20,000
hits built as nats-py builds them), for every record of the window's ~100 s of writes. It now keeps the reply
subject alone and reads the write time from it as ``msg.metadata`` does. Real nats-server."""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

from gamead_core.embedded import EmbeddedNats
from tests.support import on_js

RECORDS = 200


def test_a_look_keeps_no_message_of_its_hits(fresh_nats: Callable[[], EmbeddedNats], monkeypatch: Any) -> None:
    """The messages a look read are not alive when its read ends (each yielded message watched by a weakref; the
    one the loop variable holds aside), and every record is found with its write time. Without the fix 199 of 200
    alive (1 failed), with it 0."""
    from gamead_core.ad_ids import new_ad_id
    from gamead_core.config import load_settings
    from gamead_core.models import AdRecord, AdStatus, utcnow
    from gamead_core.queue.topology import ensure_topology
    from gamead_core.store.ads import AdStore
    from gamead_core.worker import orphan_read
    from tests.support import submission

    server = fresh_nats()
    seen: list[weakref.ref[Any]] = []
    alive_at_end: list[int] = []
    real = orphan_read.read_stream

    async def watched(*args: Any, **kwargs: Any) -> Any:
        async for msg in real(*args, **kwargs):
            seen.append(weakref.ref(msg))
            yield msg
        alive_at_end.append(sum(1 for ref in seen[:-1] if ref() is not None))  # the last: the loop's variable

    monkeypatch.setattr(orphan_read, "read_stream", watched)

    async def drill(js: Any) -> Any:
        settings = load_settings(None)
        await ensure_topology(js, settings)
        store = await AdStore.open(js._nc, js)
        store.origin = "api-gone-1:7@2026-01-01T00:00:00+00:00"
        for i in range(RECORDS):
            await store.create(AdRecord(id=new_ad_id(), status=AdStatus.QUEUED, priority=2, submitted_at=utcnow(),
                                        ad=submission(title=f"ad {i}")))
        return await orphan_read.read_records(js, None, settings.nats.request_timeout)

    found, _ = on_js(server.url, drill)
    items = found[next(iter(found))]
    assert len(items) == RECORDS and all(when.utcoffset() is not None for _, _, when in items)
    assert alive_at_end == [0], "the read kept its hits' messages alive"
