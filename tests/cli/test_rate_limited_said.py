"""probe47 F3: a command the API refused 429 throughout waited silently up to ~60 s (``gamead ads list`` against a
429 with no ``Retry-After``: 61 s, 48 requests, nothing on stderr until its final error). Now once a request has
been refused for :data:`gamead_cli.pacing.SAY_AFTER` (5) seconds the command says so, once, on stderr:
``rate limited by the API (HTTP 429); trying again until HH:MM:SS UTC`` — nothing on ``-o json``'s stdout, and
above ``gamead submit``'s progress bar. A limiter in front of the API (:class:`tests.front_door.FrontDoor`, a real
socket) refuses every request 429 ``Retry-After: 1`` for a while, then passes them to a real API."""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timezone

import pytest

from gamead_cli import pacing
from tests.forked_popen import GameadPopen, gamead_run
from tests.front_door import FrontDoor
from tests.integration.dlq_lane import Lane, shared_lane  # noqa: F401 - shared_lane is a fixture
from tests.support import clean_env, gamead_argv

LINE = re.compile(r"rate limited by the API \(HTTP 429\); trying again until (\d\d):(\d\d):(\d\d) UTC")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@pytest.fixture
def limiter(shared_lane: Lane) -> Iterator[FrontDoor]:  # noqa: F811 - the fixture above
    door = FrontDoor(int(shared_lane.url.rsplit(":", 1)[1]), status=429, retry_after=1).start()
    yield door
    door.stop()


def _said_until(text: str, began: float) -> float:
    """The epoch second the one line says, in the day of ``began``."""
    (hours, minutes, seconds), = LINE.findall(text)
    day = datetime.fromtimestamp(began, timezone.utc).replace(hour=int(hours), minute=int(minutes),
                                                              second=int(seconds), microsecond=0)
    return day.timestamp() if day.timestamp() >= began - 60 else day.timestamp() + 86400


def test_a_command_refused_throughout_says_so_once_then_ends_with_its_error() -> None:
    """``client.retry_for`` 1.5: the 429s are sent again for 9 s (6 ×); the line at ~4-5 s names that end, the
    second (at most) the command gives up."""
    door = FrontDoor(None, status=429, retry_after=1).start()
    try:
        began = time.time()
        result = gamead_run(gamead_argv("ads", "list", "--api", door.url, "-o", "json"),
                            env=clean_env(GAMEAD_CLIENT__RETRY_FOR="1.5"), capture_output=True, text=True,
                            timeout=120)
        ended = time.time()
    finally:
        door.stop()
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1 and json.loads(result.stdout)["error"]["code"] == "http_429", result.stdout
    assert len(lines) == 2 and LINE.fullmatch(lines[0]), result.stderr
    assert lines[1].startswith("error: API answered HTTP 429 to GET /ads"), result.stderr
    said = _said_until(lines[0], began)  # its retries' end, when the command gave up (its next wait did not fit)
    # the command gives up as soon as its next wait, Retry-After 1 s and up to JITTER of it more, would end past that
    # end: up to 1.2 s before it (session 58: said 1.07 s after the end at load; the premise was 1 s, no jitter)
    assert began + 8 <= said and ended - 3 <= said <= ended + 1 + pacing.JITTER, (began, ended, lines[0])
    assert door.answered >= 6, door.answered  # every second: about 9 tries, one line


def test_a_command_refused_a_while_says_so_once_and_its_json_stays_clean(limiter: FrontDoor) -> None:
    limiter.cut(7)  # refused for 7 s, then passed to the API
    result = gamead_run(gamead_argv("ads", "list", "--api", limiter.url, "-o", "json"),
                        env=clean_env(GAMEAD_CLIENT__RETRY_FOR="3"), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert isinstance(json.loads(result.stdout), dict), result.stdout
    assert len(LINE.findall(result.stderr)) == 1 and len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_a_short_refusal_is_not_said(limiter: FrontDoor) -> None:
    limiter.cut(2)
    result = gamead_run(gamead_argv("ads", "list", "--api", limiter.url, "-o", "json"),
                        env=clean_env(GAMEAD_CLIENT__RETRY_FOR="3"), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and limiter.answered >= 1, result.stderr
    assert result.stderr == "", result.stderr


def test_a_submit_refused_a_while_says_so_once_above_its_progress_bar(limiter: FrontDoor) -> None:
    """Three sender threads share the client, each refused: one line, on its own above the bar (stderr a
    terminal), the summary whole on stdout."""
    limiter.cut(7)
    master, slave = os.openpty()
    screen = bytearray()

    def read() -> None:
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the pty closed
                return
            if not chunk:
                return
            screen.extend(chunk)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        argv = gamead_argv("submit", "--count", "30", "--batch-size", "10", "--concurrency", "3", "--api",
                           limiter.url, "-o", "json")
        with GameadPopen(argv, env=clean_env(GAMEAD_CLIENT__RETRY_FOR="3", COLUMNS="160"), stdout=subprocess.PIPE,
                         stderr=slave, text=True) as proc:
            out, _ = proc.communicate(timeout=120)
    finally:
        os.close(slave)
        reader.join(10)
        os.close(master)
    summary = json.loads(out)
    assert proc.returncode == 0 and summary["accepted"] == 30, summary
    shown = _ANSI.sub("", screen.decode(errors="replace")).replace("\r", "\n")
    said = [line for line in shown.splitlines() if "rate limited" in line]
    assert len(said) == 1 and LINE.fullmatch(said[0].strip()), shown  # a line of its own, not inside the bar's
    assert "30/30" in shown, shown  # the bar went on to its end
