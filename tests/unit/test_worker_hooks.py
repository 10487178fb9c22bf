"""Pure: the worker's hooks around one attempt (issue 12 item 4): the order they run in, the time limit,
fault injection's modes, the storage pause, and that a failing hook never fails the ad. No servers: the
hooks run on a plain record and a stand-in analysis."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import pytest

from gamead_core.config import FaultSettings
from gamead_core.errors import PermanentError, QueueUnavailable, RetryableError
from gamead_core.models import AdRecord, AdStatus, Analysis
from gamead_core.worker.analyzer import analyze
from gamead_core.worker.counters import WorkerStats
from gamead_core.worker.faults import FaultInjection
from gamead_core.worker.hooks import Delivery, Failure, Hook, Hooks, classify
from gamead_core.worker.keepalive import keepalive_period
from gamead_core.worker.storage_pause import StoragePause
from gamead_core.worker.timelimit import TimeLimit
from tests.support import submission

AD = submission(title="Dragon Quest", description="An epic role-playing adventure", call_to_action="Play now")


def record(title: str = "Dragon Quest") -> AdRecord:
    return AdRecord(id="01ad", status=AdStatus.PROCESSING, priority=3, ad=AD.model_copy(update={"title": title}), attempts=1,
                    submitted_at=datetime(2026, 11, 30, tzinfo=timezone.utc))


async def analyse(rec: AdRecord) -> Analysis:
    return analyze(rec.ad)


class Recorder(Hook):
    def __init__(self, name: str, seen: list[str]) -> None:
        self.name, self.seen = name, seen

    async def before_attempt(self, rec: AdRecord) -> None:
        self.seen.append(f"{self.name}.before")

    async def around_attempt(self, rec, call):  # type: ignore[no-untyped-def]
        self.seen.append(f"{self.name}.enter")
        try:
            return await call()
        finally:
            self.seen.append(f"{self.name}.exit")

    async def after_attempt(self, rec: AdRecord, outcome: Analysis | Failure) -> None:
        self.seen.append(f"{self.name}.after:{type(outcome).__name__}")


def test_hooks_wrap_the_attempt_in_order() -> None:
    seen: list[str] = []
    outcome = asyncio.run(Hooks([Recorder("a", seen), Recorder("b", seen)]).attempt(record(), analyse))
    assert isinstance(outcome, Analysis)
    assert seen == ["a.enter", "b.enter", "a.before", "b.before", "b.exit", "a.exit",
                    "a.after:Analysis", "b.after:Analysis"]


class Broken(Hook):
    async def before_delivery(self, delivery: Delivery) -> None:
        raise RuntimeError("hook bug")

    async def after_attempt(self, rec: AdRecord, outcome: Analysis | Failure) -> None:
        raise RuntimeError("hook bug")


def test_a_failing_hook_is_logged_and_the_ad_still_completes(caplog: pytest.LogCaptureFixture) -> None:
    hooks = Hooks([Broken()])
    delivery = Delivery(msg=None, seq=1, delivery="1.1", ad_id="01ad")  # type: ignore[arg-type]
    asyncio.run(hooks.before_delivery(delivery))
    assert isinstance(asyncio.run(hooks.attempt(record(), analyse)), Analysis)
    assert caplog.text.count("worker hook Broken.") == 2


def test_the_time_limit_fails_a_slow_attempt_as_a_retryable_task_timeout() -> None:
    async def slow(rec: AdRecord) -> Analysis:
        await asyncio.sleep(30)
        raise AssertionError("not cancelled")

    outcome = asyncio.run(Hooks([TimeLimit(0.05)]).attempt(record(), slow))
    assert outcome == Failure("TaskTimeout", "analysis took longer than worker.task_timeout (0.05s)", True)


def test_the_time_limit_also_stops_a_hanging_fault() -> None:
    hang = FaultInjection(FaultSettings(rate=1, mode="hang"), hang_for=30)
    outcome = asyncio.run(Hooks([TimeLimit(0.05), hang]).attempt(record(), analyse))
    assert isinstance(outcome, Failure) and outcome.error_class == "TaskTimeout"


@pytest.mark.parametrize(("mode", "retryable"), [("retryable", True), ("permanent", False)])
def test_fault_injection_fails_matching_ads_in_its_mode(mode: str, retryable: bool) -> None:
    hooks = Hooks([FaultInjection(FaultSettings(rate=1, match="^Poison", mode=mode), hang_for=1)])
    outcome = asyncio.run(hooks.attempt(record("Poison Pill"), analyse))
    assert isinstance(outcome, Failure) and outcome.retryable is retryable
    assert "injected" in outcome.message
    assert isinstance(asyncio.run(hooks.attempt(record("Dragon Quest"), analyse)), Analysis)


def test_failures_are_classified_by_their_kind() -> None:
    assert classify(PermanentError("no")) == Failure("PermanentError", "no", retryable=False)
    assert classify(RetryableError("later", delay=3.0)) == Failure("RetryableError", "later", True, 3.0)
    assert classify(KeyError("x")) == Failure("KeyError", "'x'", retryable=True)


def test_the_keepalive_beats_three_times_per_ack_wait() -> None:
    assert keepalive_period(30) == 10
    assert keepalive_period(0.9) == 0.5  # never a busy loop on a tiny ack_wait


def test_the_storage_pause_doubles_per_round_up_to_its_cap_and_resets() -> None:
    async def rounds() -> list[float]:
        stats = WorkerStats()
        pause = StoragePause(stats)
        loop = asyncio.get_running_loop()
        pauses = []
        for _ in range(6):
            pauses.append(pause.failed(QueueUnavailable("down")))
            pause._until = loop.time()  # the round is over
        assert 0 < pause.failed(QueueUnavailable("down")) and pause.paused_for() > 0  # same round: same pause
        pause.ok()
        pause._until = loop.time()
        pauses.append(pause.failed(QueueUnavailable("down")))
        assert stats.storage_failures == 8 and stats.last_error == "storage: down"
        return pauses

    assert asyncio.run(rounds()) == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0, 0.5]
