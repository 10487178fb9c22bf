"""A whole-bucket read whose key read is outrun by writers (ci50) takes the keys from the server's subject index
(``gamead_core.queue.key_list``) instead of answering 503.

CI's run of 4ec67033 (a loaded machine): ``GET /ads`` of 21,000 records beside a writer rewriting them as fast as it
could raised ``ScanIncomplete`` ("keys kept moving faster than they were read: 25601 read"). Here the key read's
bound past its end is 0 (``follow_bound`` patched), so any write during it outruns it, as a storm does on a slow
machine. Figure before (no index fallback): ``ScanIncomplete`` in 3 of 3 runs. Now every key of the window comes, and
none from outside it. The window is rewritten once the first pass has begun and again once the key read has measured
its end, as a storm does between two steps of a read on a slow machine (session 52: a writer racing the read, as
first written, wrote nothing during the key read once in a loaded fresh clone's suite, and the test then did not
test the index)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import nats
import pytest
from nats.js.api import KeyValueConfig

from gamead_core.embedded import EmbeddedNats
from gamead_core.queue import snapshot
from gamead_core.queue.snapshot import read_snapshot

OUTSIDE, INSIDE = 300, 1_200  #: keys written before the window starts; keys in it, rewritten during the read


def test_keys_outrun_by_writers_are_taken_from_the_index(fresh_nats: Callable[[], EmbeddedNats],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(snapshot, "follow_bound", lambda span: 0)
    asked: list[int] = []
    real = snapshot.keys_now

    async def counted(*args: object, **kwargs: object) -> list[str] | None:  # the real call, counted
        asked.append(1)
        return await real(*args, **kwargs)

    monkeypatch.setattr(snapshot, "keys_now", counted)
    server = fresh_nats()

    async def run() -> list[str]:
        nc = await nats.connect(server.url)
        try:
            js = nc.jetstream()
            kv = await js.create_key_value(KeyValueConfig(bucket="OUTRUN", history=1, direct=True))
            for i in range(OUTSIDE + INSIDE):
                await kv.put(f"k{i:05d}", b"v" * 512)

            async def rewrite_window() -> None:
                for i in range(OUTSIDE, OUTSIDE + INSIDE, 60):
                    await asyncio.gather(*(kv.put(f"k{j:05d}", b"w" * 512) for j in range(i, i + 60)))

            real, infos = js.stream_info, []

            async def info_then_writes(name: str, *args: object, **kwargs: object) -> object:
                info = await real(name, *args, **kwargs)
                infos.append(info)
                if len(infos) == 2:  # the key read's end measured: every key of the window written past it
                    await rewrite_window()
                return info

            js.stream_info = info_then_writes  # type: ignore[method-assign]
            read: list[str] = []
            async for msg in read_snapshot(js, "KV_OUTRUN", "$KV.OUTRUN.>", start_seq=OUTSIDE + 1, timeout=5.0):
                if not read:  # the first pass has begun: the window rewritten past its end (a key read follows)
                    await rewrite_window()
                read.append(msg.subject)
            return read
        finally:
            await nc.close()

    subjects = asyncio.run(run())
    assert asked, "the key read was never outrun: the test did not test the index"
    assert set(subjects) == {f"$KV.OUTRUN.k{i:05d}" for i in range(OUTSIDE, OUTSIDE + INSIDE)}, \
        f"{len(set(subjects))} keys read; {INSIDE} in the window"
