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
from nats.aio.client import Client as NATS

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


async def counted(nc: NATS, levels: tuple[int, ...] = names.LEVELS, partition: int = 0) -> None:
    """Return once nats-server counts, in each of ``levels``' consumers, every pull request sent on ``nc`` before
    (on ``nc`` itself: another connection flushed before the marker was not enough, poll54: 2 runs in 8 counted one
    long poll too few). A ``PONG`` does not say so: nats-server hands a pull request to its
    consumer's own queue (``processNextMsgReq``), read by another goroutine, so a ``consumer_info`` right after a
    flush may not count a long poll placed (ci53: ``num_waiting`` 0 on level 1, the first read, 1 a few ms later,
    though the puller had placed all five; 12 reads in 60 beside 2 busy loops). A ``no_wait`` pull of one ad goes
    through the same queue after them: its answer says they are counted. Only for consumers with nothing pending,
    where it is answered 404 at once (with an ad waiting it would take it: an error here)."""
    for level in levels:
        subject = names.pull_next_subject(names.work_stream(partition), names.level_consumer(level, partition))
        answer = await nc.request(subject, b'{"batch": 1, "no_wait": true}', timeout=10)
        status = (answer.headers or {}).get(names.HDR_STATUS)
        assert status in ("404", "408"), f"level {level}: the marker pull was answered {status or answer.data!r}"


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
