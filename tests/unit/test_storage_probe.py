"""Pure: how the storage check reads the node's own writes (no server; the clock is injected)."""

from __future__ import annotations

import asyncio
from typing import Any

from gamead_core.errors import QueueUnavailable
from gamead_core.queue.storage import WRITE_FAILURE_HOLD, StorageProbe, probe_key


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def probe(clock: Clock) -> StorageProbe:
    p = StorageProbe(None, "api-host-1", interval=5, timeout=1, clock=clock)  # type: ignore[arg-type]
    p._set("ok", None)  # a probe write succeeded
    return p


def test_an_unanswered_submit_fails_the_check_until_a_write_succeeds() -> None:
    clock = Clock()
    p = probe(clock)
    assert p.readiness() == "ok"
    p.observe_write(QueueUnavailable("NATS did not answer in time"))
    clock.t += 3
    assert p.readiness() == ("failing: a submit's write to the work stream failed 3 s ago: "
                             "NATS did not answer in time")
    assert p.status()["state"] == "failing" and p.status()["probe"] == "ok"
    p.observe_write(None)
    assert p.readiness() == "ok"


def test_a_reconnect_clears_it_and_so_does_time() -> None:
    clock = Clock()
    p = probe(clock)
    p.observe_write(QueueUnavailable("NATS did not answer in time"))
    p.reconnected()  # nats-server restarted: its write errors are gone
    assert p.readiness() == "ok"
    p.observe_write(QueueUnavailable("NATS did not answer in time"))
    clock.t += WRITE_FAILURE_HOLD + 0.1
    assert p.readiness() == "ok", "a cluster moves the stream's leader by itself: the mark is bounded"


def test_a_failing_probe_says_why_and_for_how_long() -> None:
    clock = Clock()
    seen: list[Any] = []
    p = StorageProbe(None, "n", interval=5, timeout=1, clock=clock, on_failure=seen.append)  # type: ignore[arg-type]
    assert p.readiness() == "unknown: no probe write yet"
    p._set("failing", QueueUnavailable("JetStream could not store the write: insufficient resources (code 10023)"))
    clock.t += 12
    assert p.readiness() == ("failing: JetStream could not store the write: insufficient resources (code 10023) "
                             "(for 12 s)")
    assert len(seen) == 1


def test_probe_keys_are_valid_kv_keys() -> None:
    assert probe_key("api-host.example.com-42") == "api-host.example.com-42"
    assert probe_key("api-hôst 1*>") == "api-h_st_1__"


class Check:
    """A write check that fails (``error`` set) or stores (``error`` None); counts its runs."""

    def __init__(self) -> None:
        self.error: Exception | None = QueueUnavailable("NATS did not answer in time")
        self.runs = 0

    async def __call__(self) -> None:
        self.runs += 1
        if self.error is not None:
            raise self.error


def test_past_the_hold_only_a_stored_write_clears_a_failed_one() -> None:
    """A drill (session 24): on a full disk ``/readyz`` said ready, storage ok, 15 s after the last failed submit
    while every submit still failed (nats-server never answers a write to the marked stream). The hold's end now
    runs a real write check; the node stays unready until a write is stored again."""
    clock, check = Clock(), Check()
    p = StorageProbe(None, "n", interval=5, timeout=1, clock=clock, write_check=check)  # type: ignore[arg-type]
    p._set("ok", None)  # the probe's own bucket still takes its small puts
    p.observe_write(QueueUnavailable("NATS did not answer in time"))
    clock.t += WRITE_FAILURE_HOLD + 0.1
    assert p._check_due() and not asyncio.run(p.check_writes()) and check.runs == 1
    assert p.readiness() == ("failing: a submit's write to the work stream failed 15 s ago: NATS did not answer "
                             "in time; a write check failed too: NATS did not answer in time")
    assert p.status()["state"] == "failing"
    check.error = None  # space freed and nats-server restarted elsewhere (a cluster's new leader): stored again
    assert asyncio.run(p.check_writes()) and p.readiness() == "ok" and not p._check_due()


def test_no_write_check_runs_within_the_hold() -> None:
    clock, check = Clock(), Check()
    p = StorageProbe(None, "n", interval=5, timeout=1, clock=clock, write_check=check)  # type: ignore[arg-type]
    p.observe_write(QueueUnavailable("NATS did not answer in time"))
    clock.t += WRITE_FAILURE_HOLD - 1
    assert not p._check_due()
