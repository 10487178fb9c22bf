"""A bucket read whole (``gamead_core.queue.snapshot.read_snapshot``: ``GET /ads``, ``GET /v1/jobs``) while keys are
written and rewritten as a worker does (5 ads submitted, then 4 of them rewritten to processing and completed) misses
none of the keys that were there when it began. The ads are new up to :data:`KEYS_AT_MOST` keys, then ads already
there submitted again, so each read lists at most that many keys, however long the writer runs beside it.

Figure, before (session 49): a fresh clone's ``test_submit_stream`` listed 4 of 5 ads it had just submitted; a stack
of my own listed 317 of 321 ads with ``complete: true`` (the 4 its worker was running left out); 11 of 300 reads of
this test's bucket missed a key (3 of 200 in one run): ``read_keys`` ended where its consumer said nothing was
pending, while the key's revision ahead of it had been removed and its new one stored past that end. Now a look at
the stream after each read of the keys finds it.
With the keys capped (ci53), without that look: 14-20 of 400 reads missed a key, most of them once the writer only
rewrote keys already there (11-17 of 14-21 in the harness); none with it.
load57: 200 reads of at most 500 keys (88 s → 17 s beside 4 burners, load 20): without the look 5 of 200 missed a key.
load58: still past 120 s at load 40 (a NATS request unanswered for its 5 s, then ``nc.close()`` waited for ever):
60 keys at first, at most 100; a JetStream request may take 30 s; the connection closed within a bound. Beside 4
burners and other runs (load ~20): 100 and 107 s → 34-56 s, 4.9-5.3 → 3.2-3.6 CPU-s in the test's process; without
the look 8 and 18 of 200 reads missed a key (15 at 500 keys).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

import nats
from nats.js.api import KeyValueConfig

from gamead_core.embedded import EmbeddedNats
from gamead_core.queue.snapshot import read_snapshot
from gamead_core.shutdown import close_for_good

READS = 200  # load57: 400 of up to 1,000 keys took 88 s beside 4 burners (load 20), past 120 s at load 35-52
#: new keys stop here; the writer then rewrites keys already there. Before (ci53), it wrote new keys for as long as
#: the reads lasted, so each read listed more than the last: 4,435 keys by the end alone at load 10 (45.9 s), past
#: pytest's 120 s at load 28-40
KEYS_AT_MOST = 100  # load58: 500 (from 300 at first) took 100 s at load ~20, past 120 s at load 40
KEYS_AT_FIRST = 60
#: seconds a JetStream request may take (a consumer's create unanswered for nats-py's 5 s at load 40: load58); the
#: read's own wait for its next message stays the product's 5 s (a longer one stalls a read that meets a removed key)
LOADED_REQUEST = 30.0
BODY = b"r" * 300


def test_no_key_there_when_the_read_began_is_missed_while_keys_are_rewritten(
        fresh_nats: Callable[[], EmbeddedNats]) -> None:
    server = fresh_nats()

    async def run() -> list[tuple[int, list[str]]]:
        nc = await nats.connect(server.url)
        try:
            js = nc.jetstream(timeout=LOADED_REQUEST)
            kv = await js.create_key_value(KeyValueConfig(bucket="rewritten", history=1, direct=True))
            existing = {f"k{i:05d}" for i in range(KEYS_AT_FIRST)}
            for key in sorted(existing):
                await kv.put(key, BODY)
            stop = asyncio.Event()

            async def worker_like() -> None:  # a batch submitted, then 4 of it run: processing, completed
                n = len(existing)
                while not stop.is_set():
                    if n < KEYS_AT_MOST:  # new ads
                        batch = [f"k{n + j:05d}" for j in range(5)]
                        n += 5
                    else:  # ads submitted again (each read lists at most KEYS_AT_MOST keys: its work is bounded)
                        batch = [f"k{i:05d}" for i in random.sample(range(n), 5)]
                    for key in batch:
                        await kv.put(key, BODY)
                        existing.add(key)
                    await asyncio.sleep(random.uniform(0, 0.003))
                    for _ in ("processing", "completed"):
                        for key in batch[1:]:
                            await kv.put(key, BODY)
                        await asyncio.sleep(random.uniform(0, 0.002))

            writer = asyncio.create_task(worker_like())
            missed: list[tuple[int, list[str]]] = []
            try:
                for i in range(READS):
                    there = set(existing)  # every key written before this read began (none is ever deleted)
                    seen = set()
                    async for msg in read_snapshot(js, "KV_rewritten", "$KV.rewritten.>", timeout=5):
                        seen.add(msg.subject.rsplit(".", 1)[1])
                    if there - seen:
                        missed.append((i, sorted(there - seen)))
            finally:
                stop.set()
                await writer
            return missed
        finally:
            await close_for_good(nc)  # bounded: nc.close() waited on its socket until pytest's 120 s (load58)

    missed = asyncio.run(run())
    assert missed == [], f"{len(missed)} of {READS} reads missed a key: {missed[:5]}"
