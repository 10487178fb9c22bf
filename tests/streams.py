"""Streams a test fills before it reads them (the whole-stream reads' tests: pull feed, cancelled reads)."""

from __future__ import annotations

from collections.abc import Iterable

from nats.js import JetStreamContext
from nats.js.api import StreamConfig


async def filled_stream(js: JetStreamContext, name: str, sizes: Iterable[int]) -> None:
    """Stream ``name`` on the subjects ``<name, lower case>.>``, holding one message of each size in ``sizes``
    (bytes of ``x``), published in that order to ``<name, lower case>.<index>``."""
    prefix = name.lower()
    await js.add_stream(StreamConfig(name=name, subjects=[f"{prefix}.>"]))
    for i, size in enumerate(sizes):
        await js.publish(f"{prefix}.{i}", b"x" * size)
