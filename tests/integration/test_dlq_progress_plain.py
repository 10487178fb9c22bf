"""``gamead dlq purge`` / ``replay`` with stderr no terminal (a CI log, a script's pipe) said nothing of its job until
it ended, however long (leftout59): its progress bar was off and nothing stood for it. It now says where the job
stands on stderr in plain lines (one every ``PLAIN_EVERY`` s, 0 here so that each change is said), and ``-o json``'s
stdout holds the one document still."""

from __future__ import annotations

import asyncio
import json

import pytest
from typer.testing import CliRunner

from gamead_cli import output
from gamead_cli.main import app as cli
from tests.integration.dlq_lane import Lane, fill_dead, lane  # noqa: F401 - lane is a fixture

DEAD = 40


def test_a_purge_to_a_log_says_where_its_job_stands(lane: Lane, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    asyncio.run(fill_dead(lane.nats.url, DEAD))
    monkeypatch.setattr(output, "PLAIN_EVERY", 0.0)
    done = CliRunner().invoke(cli, ["dlq", "purge", "--all", "--yes", "--api", lane.url, "-o", "json"])
    assert done.exit_code == 0, done.output
    job = json.loads(done.stdout)  # one document: no progress on stdout
    assert job["state"] == "succeeded" and job["counts"]["purged"] == DEAD, job
    lines = [line for line in done.stderr.splitlines() if " · " in line]
    assert lines, done.stderr  # before: none
    assert lines[-1].startswith(f"done · {DEAD}/{DEAD} · "), lines  # its end, with the count
    assert "Traceback" not in done.stderr and "error:" not in done.stderr, done.stderr
