"""A host clock off nats-server's, reported (attack33a F1): the words, the one threshold, the log lines said once
each way, the ``gamead workers`` note, and the uptime shown from the node's own monotonic clock, not its host-clock
``startedAt``. The integration side (skewed processes on one NATS): tests/integration/test_clock_skew_api.py."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest

from gamead_cli.commands.workers import clock_notes
from gamead_core.clock import CLOCK
from gamead_core.clock_offset import OFFSET_LIMIT, OffsetLog, offset_words, past_limit
from gamead_core.registry import api_node_info, server_started


@pytest.fixture
def clean_clock() -> Iterator[None]:
    CLOCK.forget()
    yield
    CLOCK.forget()


def _host_behind(seconds: float) -> None:
    CLOCK.forget()
    sent = time.monotonic()
    CLOCK.note(sent, time.time() + seconds, sent + 0.002)


def test_the_words_say_which_way_and_by_how_much() -> None:
    assert offset_words(300.0) == "host clock 300.0 s behind nats-server's (corrected: gamead uses nats-server's time)"
    assert offset_words(-60.04).startswith("host clock 60.0 s ahead of nats-server's")
    assert past_limit(OFFSET_LIMIT + 0.01) and past_limit(-2.0)
    assert not past_limit(OFFSET_LIMIT) and not past_limit(-0.5) and not past_limit(None)


def test_the_node_logs_once_when_its_clock_passes_the_limit_and_once_when_it_is_back(
        clean_clock: None, caplog: pytest.LogCaptureFixture) -> None:
    said = OffsetLog()
    caplog.set_level(logging.INFO, logger="gamead_core.clock_offset")
    said.note("w1")  # no sample yet: nothing
    for _ in range(3):
        _host_behind(300.0)
        said.note("w1")
    _host_behind(0.0)
    said.note("w1")
    said.note("w1")
    lines = [(r.levelname, r.getMessage(), getattr(r, "clock_offset_seconds", None)) for r in caplog.records]
    assert len(lines) == 2, lines
    assert lines[0][0] == "WARNING" and "300.0 s behind" in lines[0][1] and lines[0][2] == pytest.approx(300, abs=1)
    assert lines[1][0] == "INFO" and "back within" in lines[1][1]


def test_gamead_workers_says_each_node_past_the_limit_in_a_line() -> None:
    nodes = [{"id": "wbehind", "clockOffsetSeconds": 300.0}, {"id": "ok", "clockOffsetSeconds": 0.2},
             {"id": "old", "clockOffsetSeconds": None}, {"id": "wahead", "clockOffsetSeconds": -4.5}]
    assert [t.plain for t in clock_notes(nodes)] == [
        "wbehind: host clock 300.0 s behind nats-server's (corrected: gamead uses nats-server's time)",
        "wahead: host clock 4.5 s ahead of nats-server's (corrected: gamead uses nats-server's time)"]


def test_a_heartbeat_carries_its_offset_and_its_monotonic_uptime(clean_clock: None) -> None:
    started = time.time() - 12.0  # host-clock start, 12 s ago
    _host_behind(300.0)
    info = api_node_info("api-1", started=started)
    assert info.clock_offset_seconds == pytest.approx(300.0, abs=0.5)
    assert info.uptime_seconds == pytest.approx(12.0, abs=1.0)
    # the start on nats-server's clock: beat − uptime, not the host-clock startedAt (5 min earlier)
    assert server_started(info) == pytest.approx(time.time() + 300.0 - 12.0, abs=1.0)
    # an announcement 2 s after the beat: a fresh heartbeatAt, the beat's uptime; the start does not move
    later = info.model_copy(update={"heartbeat_at": info.heartbeat_at + timedelta(seconds=2)})
    assert server_started(later) == pytest.approx(server_started(info), abs=0.1)
    # the host clock stepped 5 min since the start (NTP fixed it): startedAt is of the old time, the uptime holds
    stepped = info.model_copy(update={"clock_offset_seconds": 0.0})
    assert server_started(stepped) == pytest.approx(time.time() + 300.0 - 12.0, abs=1.0)
    old = info.model_copy(update={"uptime_seconds": None})  # an older node: startedAt corrected by its offset
    assert server_started(old) == pytest.approx(started + 300.0, abs=0.5)
    older = old.model_copy(update={"clock_offset_seconds": None, "started_at": datetime.now(timezone.utc)
                                   - timedelta(seconds=5)})
    assert server_started(older) == pytest.approx(time.time() - 5.0, abs=0.5)
