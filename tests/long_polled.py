"""The premise of the hand-back tests: a worker's long polls wait at the server while its one slot is busy.

A worker with 1 slot hands an ad back only when its long polls brought it beside a more urgent one while the slot
was busy (:mod:`gamead_core.worker.handback`). It places them when a look finds nothing waiting
(:meth:`gamead_core.queue.pull.AgingPuller.pull`), and puts back the one that brought its ad; a worker that took
its ad by an ordered pull (the ad waited already at its first look) places none while its slot is busy, and the ads
posted next wait in the queue and start in aging order, none handed back (flake38: a full run at load ~2, 1 in 4;
forced by posting 'Busy' before the worker's first look, 10 of 10). The worker logs ``worker started`` before
that first look, so a test that posts its busy ad at once raced it. These tests wait until the server counts a
waiting pull request on every level consumer (``num_waiting`` of its consumer info: JetStream's own count) before
posting the ad that fills the slot, and again once it runs, before posting the ads it is about."""

from __future__ import annotations

import asyncio

import nats

from gamead_core import names
from tests.support import wait_for


async def _waiting(url: str, levels: tuple[int, ...]) -> dict[int, int]:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        infos = [await js.consumer_info(names.work_stream(), names.level_consumer(lvl)) for lvl in levels]
        return {lvl: info.num_waiting or 0 for lvl, info in zip(levels, infos)}
    finally:
        await nc.close()


def waiting_pulls(url: str, levels: tuple[int, ...] = names.LEVELS) -> dict[int, int]:
    """Pull requests waiting at the server on each of ``levels``' consumers (partition 0), by level."""
    return asyncio.run(_waiting(url, levels))


def wait_long_polled(url: str, *, timeout: float = 20, what: str = "the worker's long polls on every level") -> None:
    """Wait until each level consumer on the server at ``url`` has a pull request waiting (one worker: its long
    polls); fail naming ``what`` and the last counts after ``timeout`` seconds."""
    last: dict[int, int] = {}

    def every_level() -> bool:
        last.update(waiting_pulls(url))
        return all(last.values())

    try:
        wait_for(every_level, timeout=timeout, interval=0.1, what=what)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; waiting pull requests by level: {last}") from None
