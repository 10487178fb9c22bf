"""hang50: :func:`gamead_core.stop_bound.ended` stops a background loop that took its first cancel (Python 3.11's
``asyncio.wait_for`` returns an await's result when it ended as the cancel came, so the loop goes on) by cancelling
it again; one that takes every cancel is left after its bound, named in a WARNING, and the stop goes on. Without
the second cancel the first loop below ran on (a stop that ``gather``-ed it never ended: the API's jobs' stop)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from gamead_core.stop_bound import ended


async def _takes_cancels(taking: list[bool], first: bool = True) -> None:
    """A loop whose await takes a cancel while ``taking[0]`` (and the first one when ``first``), as a NATS
    request's wait_for may; then it ends on one."""
    while True:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            if not (first or taking[0]):
                raise
            first = False


def test_a_loop_that_took_the_first_cancel_is_ended_by_the_next() -> None:
    async def main() -> tuple[bool, bool]:
        loop = asyncio.create_task(_takes_cancels([False]))
        await asyncio.sleep(0)  # it runs, into its sleep
        return await ended([loop], 10.0, "the loop"), loop.done()

    assert asyncio.run(main()) == (True, True)


def test_a_loop_that_takes_every_cancel_is_left_after_its_bound_and_named(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> tuple[bool, bool]:
        taking = [True]
        loop = asyncio.create_task(_takes_cancels(taking))
        await asyncio.sleep(0)
        stopped = await ended([loop], 0.3, "the stubborn loop")
        running = not loop.done()
        taking[0] = False  # asyncio.run's own cancel at its end ends it
        return stopped, running

    with caplog.at_level(logging.WARNING, logger="gamead_core.stop_bound"):
        assert asyncio.run(main()) == (False, True)
    assert "the stubborn loop did not end within 0.3 s of its cancel" in caplog.text


def test_the_partitions_watch_that_took_its_first_cancel_still_ends_the_workers_stop() -> None:
    """Session 50's leftover: the worker's stop ended its partitions watch with one cancel and an unbounded await
    (:func:`gamead_core.queue.partition_watch.watch_result`): a watch that took that cancel (a NATS request's
    wait_for) held the worker's stop until its process bound cut it (exit 1). Before: ``watch_result`` never returned
    (the 5 s wait here ran out); now it returns None, the watch ended by the next cancel."""
    from gamead_core.queue.partition_watch import watch_result

    async def main() -> tuple[bool, object, bool]:
        watch = asyncio.create_task(_takes_cancels([False]))
        await asyncio.sleep(0)
        stopping = asyncio.create_task(watch_result(watch))
        done, _ = await asyncio.wait({stopping}, timeout=5.0)  # a deadline: it never returns without the 2nd cancel
        result = stopping.result() if done else stopping.cancel()
        return bool(done), result, watch.done()

    assert asyncio.run(main()) == (True, None, True)


def test_a_stop_before_a_role_started_ends_a_connect_that_took_its_first_cancel() -> None:
    """The same kind in the CLI: ``gamead worker``/``serve`` stopped (SIGTERM, Ctrl-C) while still connecting
    cancelled the connect once and awaited it without a bound (nats-py's connect waits with wait_for): one that took
    the cancel held the process. Before: ``run_until_stopped`` never returned (the 5 s wait here ran out)."""
    from gamead_cli.runtime import run_until_stopped

    async def main() -> tuple[bool, bool]:
        stop = asyncio.Event()
        work = asyncio.ensure_future(_takes_cancels([False]))
        running = asyncio.create_task(run_until_stopped(work, stop, started=lambda: False))
        await asyncio.sleep(0)
        stop.set()
        done, _ = await asyncio.wait({running}, timeout=5.0)  # a deadline: it never returns without the 2nd cancel
        if not done:
            running.cancel()
        return bool(done), work.done()

    assert asyncio.run(main()) == (True, True)


def test_a_stop_step_cut_by_within_that_took_its_first_cancel_has_ended_when_the_stop_goes_on() -> None:
    """leftovers56: :func:`gamead_core.stop_bound.within` cut a step past its bound with one cancel and went on;
    ``gamead up``'s autoscaler (its loop awaiting a NATS request) that took that cancel ran on past
    ``scaler.close()``, free to start a worker after the stop. Now it is cancelled until it ends (CUT_FOR s at most).
    Before: the step still ran when ``within`` returned (``(False, False)``)."""
    from gamead_core.stop_bound import within

    async def main() -> tuple[bool, bool]:
        step = asyncio.create_task(_takes_cancels([False]))
        await asyncio.sleep(0)
        return await within(step, 0.05, "the autoscaler's stop"), step.done()

    assert asyncio.run(main()) == (False, True)
