"""attack33a F10: the CLI resolves an age (``--since 2m``, ``--until 1h``) on the service's clock (the ``Date`` of
the API's answers), not this machine's, and every destructive or filtered verb names the absolute window it
resolved (dry run, prompt, ``-o json``). The CLI runs through ``tests/skewed_gamead.py`` (its wall clock off by N
seconds, as a laptop whose NTP is off) against a real API on the true clock, with DLQ entries dead seconds and
minutes ago (imported with those times)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from tests.integration.dlq_lane import Lane, made_up_entry, shared_lane  # noqa: F401 - shared_lane is a fixture
from tests.support import clean_env

SKEWED = str(Path(__file__).resolve().parents[1] / "skewed_gamead.py")


def _dead(title: str, seconds_ago: float, priority: int) -> dict[str, Any]:
    """A DLQ entry (as `gamead dlq export` writes it) whose ad died ``seconds_ago`` seconds ago (true clock)."""
    at = (datetime.now(timezone.utc) - timedelta(seconds=seconds_ago)).isoformat()
    return {**made_up_entry(title, priority), "firstFailureAt": at, "lastFailureAt": at, "deadAt": at,
            "submittedAt": at}


@pytest.fixture(scope="module")
def lane(shared_lane: Lane) -> Iterator[Lane]:  # noqa: F811 - the fixture above
    """The API, with two entries of priority 2 dead 5 s ago and one of priority 4 dead 5 s ago, one 15 min ago."""
    entries = [_dead("fresh one", 5, 2), _dead("fresh two", 5, 2), _dead("just now", 5, 4), _dead("old", 900, 4)]
    assert shared_lane.run_job("/v1/dlq/import", {"entries": entries})["counts"]["imported"] == 4
    yield shared_lane


def skewed(seconds: float, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``gamead ARGS`` on a machine whose wall clock reads ``seconds`` off the API's (negative: behind)."""
    return subprocess.run([sys.executable, SKEWED, str(seconds), *args], env=clean_env(), cwd=cwd,
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


def _iso(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _shown(text: str) -> str:
    """The ISO time of ``2026-12-04 01:46:12 UTC…`` as the CLI prints a time."""
    return text[:19].replace(" ", "T") + "+00:00"


def _near(value: str, expected: datetime, slack: float = 30.0) -> bool:
    return abs((_iso(value) - expected).total_seconds()) < slack


def test_a_cli_two_hours_fast_purges_nothing_with_until_1h_and_says_the_cut_off(lane: Lane, tmp_path: Path) -> None:
    run = skewed(7200, "dlq", "purge", "--priority", "2", "--until", "1h", "--dry-run", "--api", lane.url,
                 "-o", "json", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    body = json.loads(run.stdout)
    # before: matched 2 (the cut-off was the laptop's now - 1h = true now + 1h), and no window in the document
    assert body["matched"] == 0, body
    assert _near(body["until"], datetime.now(timezone.utc) - timedelta(hours=1)), body
    assert "since" not in body, body
    assert "this machine's clock is 2h00m ahead of the service's" in run.stderr, run.stderr
    table = skewed(7200, "dlq", "purge", "--priority", "2", "--until", "1h", "--dry-run", "--api", lane.url,
                   cwd=tmp_path)
    assert table.returncode == 0, table.stderr
    assert "0 entries would be purged (dead before " in table.stdout, table.stdout
    assert _near(_shown(table.stdout.split("dead before ", 1)[1]), datetime.now(timezone.utc) - timedelta(hours=1))
    assert table.stderr.count("this machine's clock is") == 1, table.stderr  # said once


def test_the_purge_prompt_names_the_window_it_resolved_on_the_service_clock(lane: Lane, tmp_path: Path) -> None:
    # --since 1h on a laptop 2 h fast: before, since = true now + 1 h, nothing matched and nothing was asked
    run = skewed(7200, "dlq", "purge", "--priority", "2", "--since", "1h", "--api", lane.url, cwd=tmp_path)
    assert run.returncode == 2, run.stderr  # no terminal to ask: refused without --yes, the question said
    since = datetime.now(timezone.utc) - timedelta(hours=1)
    assert "Purge 2 dead-lettered ad(s) dead at or after " in run.stderr, run.stderr
    assert _near(_shown(run.stderr.split("dead at or after ", 1)[1]), since), run.stderr
    assert len(lane.dlq(priority=2)["items"]) == 2  # nothing purged


def test_a_cli_ten_minutes_slow_lists_what_died_in_the_last_10_minutes_only(lane: Lane, tmp_path: Path) -> None:
    """A window of 10 min, not 2: "just now" (dead 5 s before the module's first test) stays in it however long a
    loaded machine takes to reach this test (at load ~40 it was past 2 min once: ``[] == ['just now']``)."""
    run = skewed(-600, "dlq", "list", "--priority", "4", "--since", "10m", "--api", lane.url, "-o", "json",
                 cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    body = json.loads(run.stdout)
    titles = sorted(e["title"] for e in body["items"])
    assert titles == ["just now"], titles  # before: the entry dead 15 min ago too (since = true now - 20 min)
    assert _near(body["since"], datetime.now(timezone.utc) - timedelta(minutes=10)), body
    assert "this machine's clock is 10m00s behind the service's" in run.stderr, run.stderr
