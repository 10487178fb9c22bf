"""outage46's leftover: a load balancer in front of the API with no upstream for a while answers a bulk submit's
batches 502/503/504 with its own HTML page. Those ads were counted ``rejected`` (``http_502``…): refused by an API
that never saw them, and a 502 or 504 was not even resent with ``--idempotency-key``. Now such an answer is the API
unreachable behind the proxy: an outage (``!`` line, pause, one ad a batch, ``client.retry_for``), a keyed batch
resent as after a lost connection, an unkeyed one's ads "may be queued" (the proxy may have passed it on), never
rejected. A real API and NATS behind :class:`tests.front_door.FrontDoor` (a real socket, no mock)."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator

import pytest

from tests.forked_popen import GameadPopen, gamead_run
from tests.front_door import FrontDoor
from tests.integration.dlq_lane import Lane, shared_lane  # noqa: F401 - shared_lane is a fixture
from tests.support import clean_env, gamead_argv, wait_for

COUNT = 120


@pytest.fixture
def door(shared_lane: Lane) -> Iterator[FrontDoor]:  # noqa: F811 - the fixture above
    front = FrontDoor(int(shared_lane.url.rsplit(":", 1)[1]))
    front.start()
    yield front
    front.stop()


def _submit(door: FrontDoor, *args: str) -> dict:
    """``gamead submit --count COUNT`` through ``door``, cut for 2 s once 3 batches went through."""
    argv = gamead_argv("submit", "--count", str(COUNT), "--rate", "40", "--batch-size", "10", "--api", door.url,
                       "-o", "json", *args)
    with GameadPopen(argv, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        wait_for(lambda: door.passed >= 3, timeout=60, what="three batches through the front door")
        door.cut(2.0)
        out, err = proc.communicate(timeout=120)
    summary = json.loads(out)
    summary["stderr"], summary["exit"] = err, proc.returncode
    return summary


@pytest.mark.parametrize("status", [502, 503, 504])
def test_a_keyed_run_rides_out_a_proxy_without_upstream_and_queues_every_ad(door: FrontDoor, status: int) -> None:
    door.status = status
    summary = _submit(door, "--idempotency-key", f"behind-proxy-{status}")
    assert door.answered > 0, summary  # the proxy did answer for the API meanwhile
    assert summary["exit"] == 0, summary["stderr"]
    assert (summary["accepted"], summary["rejectedByCode"], summary["notSent"], summary["maybeQueued"]) == (
        COUNT, {}, 0, 0), summary
    title = {502: "Bad Gateway", 503: "Service Temporarily Unavailable", 504: "Gateway Time-out"}[status]
    assert [o["cause"] for o in summary["outages"]] == [f"HTTP {status} from a proxy ({status} {title} no healthy "
                                                        "upstream)"], summary
    assert f"is unreachable (HTTP {status} from a proxy" in summary["stderr"], summary["stderr"]


def test_an_unkeyed_runs_ads_a_proxy_answered_for_may_be_queued_never_rejected(door: FrontDoor) -> None:
    """Not resent (the proxy may have passed them on): "may be queued". Meanwhile one ad a second tries again, so
    few are left uncertain (a batch handed out at every turn of the schedule: 81 of the 120 ads)."""
    summary = _submit(door)
    assert door.answered > 0, summary
    assert summary["rejectedByCode"] == {}, summary
    assert summary["maybeQueuedLost"].get("gateway", 0) == summary["maybeQueuedUnknown"] > 0, summary
    assert summary["maybeQueued"] <= 30 and summary["pausedSeconds"] > 1, summary
    assert summary["accepted"] + summary["maybeQueued"] + summary["notSent"] == COUNT, summary
    assert summary["exit"] == 1 and len(summary["outages"]) == 1, summary


def test_an_unkeyed_run_a_proxy_answers_for_from_the_start_says_it_stopped_not_paused() -> None:
    """probe47 F4: a proxy answering 503 before any ad was taken: the first batch is not resent (unkeyed) and the
    run stops at once, as its summary says; the ``!`` line promised a pause until ``client.retry_for`` and one ad a
    time trying again, then the run ended 60 ms later. Now one ``✗`` line says the stop."""
    door = FrontDoor(None, status=503).start()
    try:
        result = gamead_run(gamead_argv("submit", "--count", "100", "--rate", "20", "--api", door.url, "-o", "json"),
                            env=clean_env(GAMEAD_CLIENT__RETRY_FOR="3"), capture_output=True, text=True, timeout=120)
    finally:
        door.stop()
    summary = json.loads(result.stdout)
    # the batches out before the first 503 came back (1 on a quiet machine; 2 at load 9, the final fresh clone of
    # session 48): each is counted "may be queued" once, never resent, the rest "not sent"
    assert result.returncode == 1 and door.answered >= 1, (door.answered, result.stderr)
    assert summary["accepted"] == 0 and summary["maybeQueued"] > 0 and summary["notSent"] > 0, summary
    assert summary["maybeQueued"] + summary["notSent"] == 100, summary
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("✗ ") and "no ad of this run was taken yet: sending stopped at once" in line, line
    assert "paused" not in line and "if it still is at" not in line, line


def test_a_batch_passed_on_before_the_proxy_lost_its_upstream_answering_late_does_not_split_the_outage(
        door: FrontDoor) -> None:
    """flakes50 (a fresh clone's suite at load 30): the door passed a batch on just before its cut, that batch's 200
    came back after the door's first 504, and it ended the outage (``✓``): the next 504 began a second one. An
    operator read two outages where the proxy had one. An answer to a request sent before the outage began says
    nothing of the API since: here the batch's answer is held back until the outage's ``!`` line was said."""
    door.status = 504
    argv = gamead_argv("submit", "--count", str(COUNT), "--rate", "40", "--batch-size", "10", "--api", door.url,
                       "-o", "json", "--idempotency-key", "behind-proxy-late")
    lines: list[str] = []
    with GameadPopen(argv, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        reader = threading.Thread(target=lambda: lines.extend(iter(proc.stderr.readline, "")), daemon=True)
        reader.start()
        wait_for(lambda: door.passed >= 3, timeout=60, what="three batches through the front door")
        door.hold_next()
        wait_for(lambda: door.holding == 1, timeout=60, what="a batch's answer held back by the front door")
        door.cut(3.0)
        wait_for(lambda: any("is unreachable (HTTP 504" in line for line in lines), timeout=60,
                 what="the outage's ! line")
        door.release()
        out = proc.stdout.read()
        proc.wait(timeout=120)
        reader.join(10)
    summary = json.loads(out)
    assert proc.returncode == 0 and summary["accepted"] == COUNT, ("".join(lines), summary)
    said = [line[:1] for line in lines if line[:1] in "!✓✗"]
    assert said == ["!", "✓"], "".join(lines)  # one outage begun, one ended
    assert [o["cause"] for o in summary["outages"]] == ["HTTP 504 from a proxy (504 Gateway Time-out no healthy "
                                                        "upstream)"], summary
