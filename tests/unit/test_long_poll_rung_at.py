"""LongPolls.rung_at, what the worker's linger counts from (gamead_core.worker.linger): the arrival of the oldest ad
a long poll brought that no pull took yet, never a stale time (a reviewer found the wiring untested)."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

from gamead_core.queue.long_poll import LongPolls


def _polls() -> LongPolls:
    return LongPolls(None, 5.0, range(1), lambda level: True)  # type: ignore[arg-type] # no NATS: nothing is sent


def _delivered(polls: LongPolls, level: int) -> None:
    """What a long poll's answer with an ad does (LongPolls._on_bell): into the level's inbox, then the bell."""
    polls.inbox[(level, 0)].put_nowait(SimpleNamespace(headers=None, data=b"{}"))  # type: ignore[arg-type]
    polls._ring()


def test_the_first_arrival_is_kept_until_a_pull_takes_every_ad() -> None:
    polls = _polls()
    assert polls.rung_at is None
    before = time.monotonic()
    _delivered(polls, 3)
    first = polls.rung_at
    assert first is not None and first >= before
    _delivered(polls, 1)  # a second ad: the wait still counts from the first
    assert polls.rung_at == first
    assert len(polls.take(1)) == 1  # one left in an inbox: still waiting since the first arrival
    assert polls.rung_at == first
    assert len(polls.take(5)) == 1
    assert polls.rung_at is None


def test_an_inbox_emptied_by_another_path_leaves_no_stale_time_once_the_worker_waits() -> None:
    """A no_wait pull takes from the inbox directly (pull_request.take_delivered), not through take(): the next
    idle wait, finding every inbox empty, clears the time, so a later arrival is counted from itself."""
    polls = _polls()
    _delivered(polls, 2)
    polls.inbox[(2, 0)].get_nowait()
    assert polls.rung_at is not None
    polls.place = _no_place  # type: ignore[method-assign] # no NATS to put long polls at
    asyncio.run(polls.wait(polls.published, timeout=0))
    assert polls.rung_at is None


async def _no_place(skip: object = None, room: object = None) -> None:
    return None
