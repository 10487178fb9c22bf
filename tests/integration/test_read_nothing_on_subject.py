"""A read of a stream's messages on one subject when the stream holds messages, none of them on it, ends at once:
``read_snapshot`` (``GET /v1/jobs``, ``GET /ads``, the doctor's look for a running repair) and ``read_stream``.

Figure, before (attack59): each read opened a consumer and waited its whole timeout (5 s) for a first message that
could not come, then once more in ``read_keys``; the jobs bucket holding a repair claim and no job document made
``POST /v1/doctor/repair`` take 20 s (two lists) and ``GET /v1/jobs`` 10 s. Here each read is given a 60 s timeout
and a 30 s deadline: every one of them waited the 60 s before, none does now."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import nats
from nats.js.api import KeyValueConfig

from gamead_core.embedded import EmbeddedNats
from gamead_core.queue.scan import read_stream
from gamead_core.queue.snapshot import read_snapshot

TIMEOUT = 60.0  #: the reads' own wait for a message (the product's is 5 s)
DEADLINE = 30.0  #: what the test gives each read: under TIMEOUT, far over the milliseconds it takes


async def _all(reads: AsyncIterator[object]) -> list[object]:
    return [msg async for msg in reads]


def test_a_read_of_a_subject_with_no_message_ends_at_once(fresh_nats: Callable[[], EmbeddedNats]) -> None:
    server = fresh_nats()

    async def run() -> None:
        nc = await nats.connect(server.url)
        try:
            js = nc.jetstream()
            kv = await js.create_key_value(KeyValueConfig(bucket="jobs_like", history=1, direct=True))
            await kv.put("claim.repair", b"{}")  # the stream's only message: not on the subject read
            for read in (read_snapshot(js, "KV_jobs_like", "$KV.jobs_like.job.*", timeout=TIMEOUT),
                         read_stream(js, "KV_jobs_like", "$KV.jobs_like.job.*", timeout=TIMEOUT),
                         read_stream(js, "KV_jobs_like", "$KV.jobs_like.job.*", timeout=TIMEOUT, follow=True)):
                assert await asyncio.wait_for(_all(read), DEADLINE) == []
            await kv.put("job.a", b"{}")
            await kv.put("claim.repair", b"{}")  # one on the subject, then only others after it
            for read in (read_snapshot(js, "KV_jobs_like", "$KV.jobs_like.job.*", timeout=TIMEOUT),
                         read_stream(js, "KV_jobs_like", "$KV.jobs_like.job.*", timeout=TIMEOUT)):
                msgs = await asyncio.wait_for(_all(read), DEADLINE)
                assert [getattr(m, "subject", None) for m in msgs] == ["$KV.jobs_like.job.a"]
            assert await asyncio.wait_for(_all(read_snapshot(js, "KV_jobs_like", "$KV.jobs_like.job.*", start_seq=3,
                                                             timeout=TIMEOUT)), DEADLINE) == []
        finally:
            await nc.close()

    asyncio.run(run())
