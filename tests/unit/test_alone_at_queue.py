"""When a suspect ad's worker counts as alone at the queue (gamead_core.worker.alone.QueueSide.still): no long poll of
its may still be answered, no pull of its pull loop is under way (QueueSide.pulling, wherever else the loop waits),
and no ad waits unheld in an inbox; one that does wakes the loop, which holds it. The whole wait, against a real
nats-server: tests/integration/test_alone_at_queue.py and test_alone_parked.py."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

import pytest

from gamead_core.queue.long_poll import POLL_MARGIN, LongPolls
from gamead_core.worker import alone
from gamead_core.worker.alone import MARGIN, QueueSide
from gamead_core.worker.held import HeldAds
from gamead_core.worker.slots import SlotWatch


def _side() -> tuple[QueueSide, LongPolls, SlotWatch]:
    polls = LongPolls(None, 5.0, range(1), lambda level: True)  # type: ignore[arg-type] # no NATS: nothing is sent
    slots = SlotWatch(2)
    return QueueSide(slots, lambda: SimpleNamespace(polls=polls)), polls, slots  # type: ignore[arg-type,return-value]


def test_a_live_long_poll_or_a_pull_under_way_is_not_alone_at_the_queue() -> None:
    side, polls, _ = _side()
    assert side.bound == 5.0 + POLL_MARGIN + MARGIN  # one long poll's life, then the margins
    assert side.still()  # the loop is anywhere but in its pull (a slot, a quiet, a pause, the stop): no pull
    with side:
        assert not side.still()  # its pull, or the start step of what it brought, is under way
    assert side.still()
    polls._out.sent((3, 0), "bell.1", time.monotonic() + 5.0, gone_before=0.0)  # at the server (LongPolls.place)
    assert not side.still()
    polls._out.clear()
    polls._out.sent((3, 0), "bell.2", time.monotonic() - POLL_MARGIN - 0.1, gone_before=0.0)  # never answered: gone
    assert side.still()
    polls._out.sent((3, 0), "bell.3", time.monotonic() + 5.0, gone_before=time.monotonic() - POLL_MARGIN)
    polls._out.ended((3, 0), "bell.3")  # answered (LongPolls._on_bell: its 408)
    assert side.still()


def test_a_pull_that_fails_still_ends_being_under_way() -> None:
    side, _, _ = _side()
    try:
        with side:
            raise ConnectionError("NATS went away")
    except ConnectionError:
        pass
    assert side.still()


def test_stopped_long_polls_bring_nothing_so_none_is_waited_for() -> None:
    """A quiet worker drops its long polls (AgingPuller.stop): unsubscribed, none can bring it an ad any more. Before
    (alone52) they still counted live until their expiry, and a quiet worker's suspect ad waited for them."""
    async def main() -> None:
        side, polls, _ = _side()
        polls._out.sent((3, 0), "bell.1", time.monotonic() + 5.0, gone_before=0.0)
        assert not side.still()
        await polls.stop()
        assert side.still()

    asyncio.run(main())


def test_an_ad_left_in_an_inbox_wakes_the_loop_to_hold_it() -> None:
    async def main() -> None:
        side, polls, slots = _side()
        loop = asyncio.ensure_future(slots.wait(None))  # the pull loop, waiting for a slot (a full or blocked worker)
        await asyncio.sleep(0)
        polls.inbox[(2, 0)]._queue.append(SimpleNamespace(headers=None))  # came while the loop held others: no wake
        polls.inbox[(2, 0)]._came.append(time.monotonic())
        assert not side.still()
        assert await asyncio.wait_for(loop, 5) is True  # woken: it takes the ad and holds it (Worker._loop)
        polls.take(1)
        assert side.still()

    asyncio.run(main())


def test_no_puller_yet_is_alone() -> None:
    assert QueueSide(SlotWatch(1), lambda: None).still()


def test_a_suspect_ad_waits_for_its_pull_loop_and_says_so_only_past_the_bound(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """alone_at_queue: still at once, the held ads are announced and it returns, silent; a pull under way past the
    bound (here 0.1 + 0.2 s), it says so, announces anyway and returns (the attempt goes on)."""
    monkeypatch.setattr(alone, "POLL_MARGIN", 0.0)
    monkeypatch.setattr(alone, "MARGIN", 0.2)
    polls = LongPolls(None, 0.1, range(1), lambda level: True)  # type: ignore[arg-type]
    side = QueueSide(SlotWatch(1), lambda: SimpleNamespace(polls=polls))  # type: ignore[arg-type,return-value]
    announced: list[int] = []

    async def announce() -> None:
        announced.append(1)

    async def main() -> None:
        await alone.alone_at_queue(HeldAds(), announce, None, 1.0, side, "01quiet")
        assert announced == [1] and "runs alone while" not in caplog.text
        with side:  # a pull under way for good
            await asyncio.wait_for(alone.alone_at_queue(HeldAds(), announce, None, 1.0, side, "01busy"), 5)
        assert announced == [1, 1] and "ad 01busy runs alone while this worker may still be given ads" in caplog.text

    asyncio.run(main())
