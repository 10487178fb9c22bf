"""fix33a: :class:`gamead_cli.submit.outage.Outage`, the rule of a bulk submit across an API outage, on a clock of
the test's own: said once when it begins and once when it ends, retried within ``client.retry_for`` of its start
and not after, and the sending stopped (said) when it outlasts that with no request out."""

from __future__ import annotations

import threading

from gamead_cli.submit.outage import Outage

T0 = 1_796_351_465.0  # 2026-12-04T02:31:05Z


def _outage(now: list[float]) -> tuple[Outage, list[tuple[str, str]]]:
    said: list[tuple[str, str]] = []
    outage = Outage("http://127.0.0.1:8080", 10.0, lambda mark, text: said.append((mark, text)),
                    clock=lambda: now[0], wall=lambda: T0 + now[0])
    return outage, said


def test_an_outage_is_said_once_when_it_begins_and_once_when_it_ends() -> None:
    now = [0.0]
    outage, said = _outage(now)
    outage.answered()  # the API answering as usual: nothing to say
    assert said == [] and outage.summary(0) == {"outages": [], "pausedSeconds": 0.0, "stoppedByOutage": False,
                                                "refusedByOutage": 0}
    assert outage.refused("connection refused") is True
    now[0] = 4.0
    assert outage.refused("connection refused") is True  # within client.retry_for of its start: retried
    assert [m for m, _ in said] == ["!"]
    assert said[0][1].startswith("02:31:05 UTC the API at http://127.0.0.1:8080 is unreachable (connection "
                                 "refused): sending paused, the requests out are retried; if it still is at "
                                 "02:31:15 UTC (client.retry_for 10 s)")
    assert "· API unreachable since 02:31:05 UTC (connection refused): paused" in outage.status()
    now[0] = 9.5
    outage.answered()
    assert [m for m, _ in said] == ["!", "✓"] and "answers again after 9.5 s unreachable" in said[1][1]
    assert outage.status() == ""
    [span] = outage.summary(6)["outages"]
    assert span == {"since": "2026-12-04T02:31:05.000Z", "until": "2026-12-04T02:31:14.500Z", "seconds": 9.5,
                    "cause": "connection refused"}
    assert outage.summary(6)["refusedByOutage"] == 6


def test_past_retry_for_a_request_is_not_retried_and_the_sending_stops_once_none_is_out() -> None:
    now = [0.0]
    outage, said = _outage(now)
    stop = threading.Event()
    outage.started()
    assert outage.refused("connection refused") is True
    outage.finished()
    now[0] = 3.0
    assert outage.hold(stop) is False and not stop.is_set()  # none out, time left: the next batch goes, to try
    outage.started()
    now[0] = 10.5
    assert outage.refused("connection refused") is False  # past client.retry_for: given up at once
    outage.finished()
    assert outage.hold(stop) is True and stop.is_set() and outage.stopped
    assert said[-1][0] == "✗" and "is still unreachable after 10 s (connection refused): sending stopped" in said[-1][1]
    outage.answered()  # back after the run stopped: not said as "sending resumes"
    assert [m for m, _ in said] == ["!", "✗"] and outage.summary(3)["stoppedByOutage"] is True
