"""Streams a test fills before it reads them (the whole-stream reads' tests: pull feed, cancelled reads)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from contextlib import aclosing

from nats.js import JetStreamContext
from nats.js.api import StreamConfig

from gamead_core.queue.scan import read_stream


async def filled_stream(js: JetStreamContext, name: str, sizes: Iterable[int]) -> None:
    """Stream ``name`` on the subjects ``<name, lower case>.>``, holding one message of each size in ``sizes``
    (bytes of ``x``), published in that order to ``<name, lower case>.<index>``."""
    prefix = name.lower()
    await js.add_stream(StreamConfig(name=name, subjects=[f"{prefix}.>"]))
    for i, size in enumerate(sizes):
        await js.publish(f"{prefix}.{i}", b"x" * size)


async def read_counts(js: JetStreamContext, name: str, reads: int, *, timeout: float) -> list[int]:
    """``reads`` whole reads at once of stream ``name`` (:func:`filled_stream`'s subjects), through
    :func:`~gamead_core.queue.scan.read_stream` with ``timeout``: how many messages each got, in order."""
    async def one() -> int:
        async with aclosing(read_stream(js, name, f"{name.lower()}.>", timeout=timeout)) as msgs:
            return sum([1 async for _ in msgs])

    return list(await asyncio.gather(*(one() for _ in range(reads))))
