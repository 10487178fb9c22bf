"""``gamead top --once`` and ``gamead workers``: one snapshot for scripts and plain SSH sessions."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gamead_cli import exitcodes
from gamead_cli.main import app
from tests.tui.conftest import Observed
from tests.support import drop_gamead_env

#: one pytest-xdist worker runs every module of the package's ``observed`` stack (started once)
pytestmark = pytest.mark.xdist_group("tui-observed")

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    drop_gamead_env(monkeypatch, tmp_path)


@pytest.fixture
def closed_url(closed_port: Callable[[], int]) -> str:
    """A URL where nothing answers, its port held for the test (tests/conftest.py ``closed_port``)."""
    return f"http://127.0.0.1:{closed_port()}"


def test_top_once_prints_every_panel(observed: Observed) -> None:
    result = CliRunner().invoke(app, ["top", "--once", "--api", observed.url])
    assert result.exit_code == 0, result.output
    out = _ANSI.sub("", result.stdout)
    for heading in ("queue", "throughput", "latency", "nodes", "DLQ", "autoscaler"):
        assert heading in out
    assert re.search(r"^P5\b", out, re.M) and "api-" in out


def test_top_once_json_is_the_raw_snapshot(observed: Observed) -> None:
    result = CliRunner().invoke(app, ["top", "--once", "-o", "json", "--api", observed.url])
    assert result.exit_code == 0, result.output
    snap = json.loads(result.stdout)
    assert [lv["priority"] for lv in snap["stats"]["queue"]["levels"]] == [1, 2, 3, 4, 5]
    assert snap["stats"]["nats"]["connected"] is True
    assert any(n["role"] == "api" for n in snap["workers"])
    assert snap["dlq"] is not None and "items" in snap["dlq"], snap["dlqError"]


def test_workers_lists_the_registry(observed: Observed) -> None:
    result = CliRunner().invoke(app, ["workers", "-o", "json", "--api", observed.url])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    # the stack's own API: other modules of the group start (and stop, or SIGSTOP) APIs of their own on its NATS,
    # listed gone for a while; the first API by id was one of those in a fresh clone's run (fresh45e)
    api_nodes = [n for n in body["items"] if n["role"] == "api" and n["pid"] == observed.api.pid]
    assert api_nodes and api_nodes[0]["state"] == "ok" and api_nodes[0]["heartbeatAgeSeconds"] < 10, body["items"]
    table = CliRunner().invoke(app, ["workers", "--api", observed.url])
    assert table.exit_code == 0 and api_nodes[0]["id"] in table.stdout and "HEARTBEAT" in table.stdout


def test_unreachable_api_is_one_line_and_exit_code_3(closed_url: str) -> None:
    for argv in (["top", "--once"], ["workers"]):
        result = CliRunner().invoke(app, [*argv, "--api", closed_url])
        assert result.exit_code == exitcodes.UNREACHABLE, result.output
        assert "cannot reach the gamead API" in result.stderr
        assert "Traceback" not in result.output and len(result.stderr.strip().splitlines()) == 1


def test_full_screen_top_needs_a_terminal(observed: Observed) -> None:
    result = CliRunner().invoke(app, ["top", "--api", observed.url])
    assert result.exit_code == exitcodes.USAGE  # bad usage in a script, as the replay without --once
    assert "--once" in result.stderr
