"""Pure: how the storage check reads the node's own writes (no server; the clock is injected)."""

from __future__ import annotations

import asyncio
from typing import Any

import nats.errors
import nats.js.errors

from gamead_core.errors import QueueUnavailable
from gamead_core.queue.storage import CHECK_BACKOFF_CAP, WRITE_FAILURE_HOLD, StorageProbe, check_delay, probe_key
from gamead_core.queue.write_check import refusal
from tests.hand_clock import HandClock


def probe(clock: HandClock) -> StorageProbe:
    p = StorageProbe(None, "api-host-1", interval=5, timeout=1, clock=clock)  # type: ignore[arg-type]
    p._set("ok", None)  # a probe write succeeded
    return p


def test_an_unanswered_submit_fails_the_check_until_a_write_succeeds() -> None:
    clock = HandClock(1000.0)
    p = probe(clock)
    assert p.readiness() == "ok"
    p.observe_write(QueueUnavailable("NATS did not answer in time"))
    clock.now += 3
    assert p.readiness() == ("failing: a submit's write to the work stream failed 3 s ago: "
                             "NATS did not answer in time")
    assert p.status()["state"] == "failing" and p.status()["probe"] == "ok"
    p.observe_write(None)
    assert p.readiness() == "ok"


def test_a_reconnect_clears_it_and_so_does_time() -> None:
    clock = HandClock(1000.0)
    p = probe(clock)
    p.observe_write(QueueUnavailable("NATS did not answer in time"))
    p.reconnected()  # nats-server restarted: its write errors are gone
    assert p.readiness() == "ok"
    p.observe_write(QueueUnavailable("NATS did not answer in time"))
    clock.now += WRITE_FAILURE_HOLD + 0.1
    assert p.readiness() == "ok", "a cluster moves the stream's leader by itself: the mark is bounded"


def test_a_failing_probe_says_why_and_for_how_long() -> None:
    clock = HandClock(1000.0)
    seen: list[Any] = []
    p = StorageProbe(None, "n", interval=5, timeout=1, clock=clock, on_failure=seen.append)  # type: ignore[arg-type]
    assert p.readiness() == "unknown: no probe write yet"
    p._set("failing", QueueUnavailable("JetStream could not store the write: insufficient resources (code 10023)"))
    clock.now += 12
    assert p.readiness() == ("failing: JetStream could not store the write: insufficient resources (code 10023) "
                             "(for 12 s)")
    assert len(seen) == 1


def test_probe_keys_are_valid_kv_keys() -> None:
    """Valid KV keys, one per node id (review41 F9: ``api:1`` and ``api_1`` had one probe key, 1 for 2 before)."""
    assert probe_key("api-host.example.com-42") == "api-host_example_com-42"
    assert probe_key("api-hôst 1*>") == "api-h=f4st=201=2a=3e"
    assert probe_key("api:1") != probe_key("api_1")


class Check:
    """A write check that fails (``error`` set) or stores (``error`` None); counts its runs."""

    def __init__(self) -> None:
        self.error: Exception | None = QueueUnavailable("NATS did not answer in time")
        self.runs = 0

    async def __call__(self) -> None:
        self.runs += 1
        if self.error is not None:
            raise self.error


def held_past_the_hold(clock: HandClock, check: Check) -> StorageProbe:
    """A probe (write check ``check``) whose last probe stored, with one submit that NATS did not answer, and
    :data:`WRITE_FAILURE_HOLD` just past: the next round runs the write check."""
    p = StorageProbe(None, "n", interval=5, timeout=1, clock=clock, write_check=check)  # type: ignore[arg-type]
    p._set("ok", None)
    p.observe_write(QueueUnavailable("NATS did not answer in time"))
    clock.now += WRITE_FAILURE_HOLD + 0.1
    return p


def test_past_the_hold_only_a_stored_write_clears_a_failed_one() -> None:
    """A drill (session 24): on a full disk ``/readyz`` said ready, storage ok, 15 s after the last failed submit
    while every submit still failed (nats-server never answers a write to the marked stream). The hold's end now
    runs a real write check; the node stays unready until a write is stored again."""
    clock, check = HandClock(1000.0), Check()
    p = StorageProbe(None, "n", interval=5, timeout=1, clock=clock, write_check=check)  # type: ignore[arg-type]
    p._set("ok", None)  # the probe's own bucket still takes its small puts
    p.observe_write(QueueUnavailable("NATS did not answer in time"))
    clock.now += WRITE_FAILURE_HOLD + 0.1
    assert p._check_due() and not asyncio.run(p.check_writes()) and check.runs == 1
    assert p.readiness() == ("failing: a submit's write to the work stream failed 15 s ago: NATS did not answer "
                             "in time; a write check failed too: NATS did not answer in time")
    assert p.status()["state"] == "failing"
    check.error = None  # space freed and nats-server restarted elsewhere (a cluster's new leader): stored again
    assert asyncio.run(p.check_writes()) and p.readiness() == "ok" and not p._check_due()


def test_no_write_check_runs_within_the_hold() -> None:
    clock, check = HandClock(1000.0), Check()
    p = StorageProbe(None, "n", interval=5, timeout=1, clock=clock, write_check=check)  # type: ignore[arg-type]
    p.observe_write(QueueUnavailable("NATS did not answer in time"))
    clock.now += WRITE_FAILURE_HOLD - 1
    assert not p._check_due()


class Refusing(Check):
    """A write check every target answered, some by refusing (a full stream, a leaderless one)."""

    def __init__(self, refused: list[str]) -> None:
        super().__init__()
        self.error = None
        self.refused = refused

    async def __call__(self) -> list[str]:  # type: ignore[override]
        await super().__call__()
        return self.refused


def test_a_full_or_leaderless_stream_answers_the_check_and_readyz_names_it() -> None:
    """Review: one held timeout needed every partition and the ad bucket to *store* a write, so a full queue
    (discard new) or a partition without a leader kept every API node unready for ever. Answered now clears:
    ``/readyz`` is ready (``degraded``), naming which target refused and why."""
    clock = HandClock(1000.0)
    check = Refusing(["GAMEAD_ADS_1: the stream is full: maximum messages exceeded"])
    p = held_past_the_hold(clock, check)
    assert asyncio.run(p.check_writes())
    assert p.readiness() == ("degraded: writes are stored, but the write check was refused (not for storage) by "
                             "GAMEAD_ADS_1: the stream is full: maximum messages exceeded")
    assert p.status()["state"] == "degraded" and p.status()["writeCheckRefused"] == check.refused[0]
    p.observe_write(None)  # a submit is stored again: nothing to say any more
    assert p.readiness() == "ok"


def test_what_counts_as_an_answer() -> None:
    """Pure: a definite JetStream answer that is not a storage failure counts as answered; a storage refusal, a
    timeout or a lost connection does not."""
    full = nats.js.errors.APIError(code=503, err_code=10077, description="maximum messages exceeded")
    assert refusal(full) == "the stream is full: maximum messages exceeded"
    assert refusal(nats.js.errors.NoStreamResponseError()) is not None  # no leader (or no stream) right now
    assert refusal(nats.errors.NoRespondersError()) is not None
    for not_stored in (nats.js.errors.APIError(code=503, err_code=10023, description="insufficient resources"),
                       nats.js.errors.APIError(code=503, err_code=10077, description="error writing msg: disk"),
                       nats.errors.TimeoutError(), asyncio.TimeoutError(),
                       nats.errors.ConnectionReconnectingError()):
        assert refusal(not_stored) is None, not_stored


def test_failed_write_checks_back_off() -> None:
    """Review: while held, the check ran every second, 2×(partitions+1) JetStream calls each time. Now 1, 2, 4,
    8, 16, then every 30 s; a new failure starts the schedule over (after its hold)."""
    assert [check_delay(n) for n in range(8)] == [0, 1, 2, 4, 8, 16, CHECK_BACKOFF_CAP, CHECK_BACKOFF_CAP]
    clock, check = HandClock(1000.0), Check()
    p = StorageProbe(None, "n", interval=5, timeout=1, clock=clock, write_check=check)  # type: ignore[arg-type]
    p.observe_write(QueueUnavailable("NATS did not answer in time"))
    clock.now += WRITE_FAILURE_HOLD + 0.1

    def tick_for(seconds: int) -> int:  # the probe loop, once a second while failing: checks run
        runs = check.runs
        for _ in range(seconds):
            if p._check_due():
                asyncio.run(p.check_writes())
            clock.now += 1
        return check.runs - runs

    assert tick_for(60) == 6  # at 0, 1, 3, 7, 15, 31 s (then 61 s), not 60
    assert "a write check failed too" in p.readiness()
    p.observe_write(QueueUnavailable("NATS did not answer in time"))  # a new failure: its hold, then from 1 s
    assert tick_for(int(WRITE_FAILURE_HOLD)) == 0
    assert tick_for(4) == 2


def test_a_submit_failing_during_a_check_is_not_cleared_by_it() -> None:
    """Review: a submit failing while a check awaited was cleared by that check's success. A check clears only
    failures observed before it started."""
    clock = HandClock(1000.0)
    p: StorageProbe

    class FailsASubmitMeanwhile(Check):
        async def __call__(self) -> None:
            await super().__call__()
            p.observe_write(QueueUnavailable("NATS did not answer in time"))  # while the check's writes wait

    check = FailsASubmitMeanwhile()
    check.error = None
    p = held_past_the_hold(clock, check)
    assert not asyncio.run(p.check_writes())
    assert p.readiness().startswith("failing: a submit's write to the work stream failed 0 s ago")
    assert not p._check_due(), "the new failure has its own hold"


class Held(Check):
    """A write check held on an event (its writes waiting for JetStream), then failing or refused."""

    def __init__(self, refused: list[str] | None = None) -> None:
        super().__init__()
        self.refused = refused
        self.error = None if refused is not None else self.error
        self.release = asyncio.Event()

    async def __call__(self) -> list[str] | None:  # type: ignore[override]
        await self.release.wait()
        await super().__call__()
        return self.refused


def test_a_check_running_when_a_submit_is_stored_does_not_apply_its_outcome() -> None:
    """Review: a stored submit cleared the failure but a check running at that moment still applied its result:
    a refusal made ``/readyz`` ``degraded`` with no log line, a failure was remembered and the next unrelated
    failure read "…; a write check failed too: …". The stored submit is the later word."""
    async def run(check: Held) -> tuple[StorageProbe, bool]:
        clock = HandClock(1000.0)
        p = held_past_the_hold(clock, check)
        task = asyncio.create_task(p.check_writes())
        await asyncio.sleep(0)  # the check's writes are waiting
        p.observe_write(None)  # a submit is stored meanwhile
        check.release.set()
        return p, await task

    p, cleared = asyncio.run(run(Held(["GAMEAD_ADS_1: the stream is full: maximum messages exceeded"])))
    assert not cleared and p.readiness() == "ok" and p.status()["writeCheckRefused"] is None
    p, cleared = asyncio.run(run(Held()))
    assert not cleared and p.readiness() == "ok"
    p.observe_write(QueueUnavailable("JetStream could not store the write: insufficient resources (code 10023)"))
    assert p.readiness() == ("failing: a submit's write to the work stream failed 0 s ago: JetStream could not "
                             "store the write: insufficient resources (code 10023)")


def test_degraded_ends_by_itself_on_an_idle_node_and_stats_say_it() -> None:
    """Review: ``degraded`` lasted until a submit was stored, so an idle node (a load balancer sends it nothing)
    said it for ever, while ``/v1/stats`` ``storage.state`` said ``ok``. While degraded the write check runs
    again every :data:`CHECK_BACKOFF_CAP` s; once every target stores, ``/readyz`` says ``ok``."""
    clock = HandClock(1000.0)
    check = Refusing(["GAMEAD_ADS_1: the stream is full: maximum messages exceeded"])
    p = held_past_the_hold(clock, check)
    assert asyncio.run(p.check_writes()) and p.readiness().startswith("degraded: ")
    assert p.status()["state"] == "degraded"
    clock.now += CHECK_BACKOFF_CAP - 1
    assert not p._check_due(), "not at every probe"
    clock.now += 1
    assert p._check_due() and asyncio.run(p.check_writes()) and p.readiness().startswith("degraded: ")
    check.refused = []  # the workers drained the full stream
    clock.now += CHECK_BACKOFF_CAP
    assert p._check_due() and asyncio.run(p.check_writes())
    assert p.readiness() == "ok" and p.status()["state"] == "ok" and not p._check_due()


def test_a_batch_with_stored_ads_does_not_mark_storage_failing_for_one_slow_ad() -> None:
    """review29b F5: a batch of stored ads and one whose ack did not come marked storage failing (/readyz 503, an
    ERROR line) though the same batch had just shown writes work. A batch with a stored ad counts as a stored write;
    only a batch with none, and an unanswered one, counts as a failure (attack29c F9)."""
    import asyncio
    from datetime import datetime, timezone
    from types import SimpleNamespace

    from gamead_core.api.observed_intake import ObservedIntake
    from gamead_core.errors import maybe_queued
    from gamead_core.intake import Queued

    seen: list[object] = []
    storage = SimpleNamespace(observe_write=seen.append, refusing=lambda: None)  # not known failing: all go
    link = SimpleNamespace(storage=storage, nc=SimpleNamespace(is_connected=True), watch=None,
                           settings=SimpleNamespace(queue=SimpleNamespace(replicas=1)))
    stored = Queued("01abc", 3, datetime.now(timezone.utc), False)

    class Intake:
        def __init__(self, results: list[object]) -> None:
            self.results = results

        async def submit_many(self, ads: list[object]) -> list[object]:
            return self.results

    def batch(*results: object) -> None:
        asyncio.run(ObservedIntake(Intake(list(results)), link).submit_many([]))  # type: ignore[arg-type]

    batch(stored, maybe_queued("01abd", keyed=False))
    assert seen == [None]
    batch(maybe_queued("01abe", keyed=False))
    assert len(seen) == 2 and "did not answer in time" in seen[1].message  # type: ignore[attr-defined]
