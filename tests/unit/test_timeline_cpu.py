"""The opt-in CPU timeline (tests/timeline.py): what it names a started process, and the ranking it prints."""

from __future__ import annotations

import collections
import inspect
import subprocess
import sys

import pytest

from tests.timeline import _kind, cpu_summary


def test_a_started_process_is_named_by_its_program_and_a_gamead_interpreter_by_its_command() -> None:
    assert _kind(["/opt/bin/nats-server", "-c", "x.conf"]) == "nats-server"
    assert _kind("valkey-server") == "valkey-server"
    assert _kind([sys.executable, "-m", "gamead_cli", "up", "--port", "1"]) == "python:up"
    assert _kind([sys.executable, "-c", "print(1)"]) == "python"
    assert _kind([]) == "?"


def test_modules_rank_by_charged_cpu_fixtures_by_setup_cpu_and_processes_are_summed() -> None:
    rows = [
        {"w": "gw0", "s": 1, "id": "tests/a.py::t1", "cpu": 1.0, "own": 0.25, "kids": 0.75,
         "procs": {"nats-server": 2}, "fixtures": [["lane", "function", 0.5, 0.0, 1.0]]},
        {"w": "gw0", "s": 2, "id": "tests/a.py::t2", "cpu": 2.0, "own": 1.0, "kids": 1.0, "procs": {"gamead:serve": 1},
         "fixtures": [["lane", "function", 0.25, 0.0, 1.0], ["stack", "session", 0.0, 0.0, 3.0]]},
        # its setup counted what tests/a.py started, ended late: charged to tests/a.py
        {"w": "gw0", "s": 3, "id": "tests/b.py::t", "cpu": 5.0, "own": 1.0, "kids": 4.0, "phases": {"setup": 4.0}},
        {"w": "gw1", "s": 1, "id": "tests/c.py::t", "cpu": 2.5, "own": 2.5, "kids": 0.0},  # a row of the old format
    ]
    lines = cpu_summary(rows)
    modules = [line.split()[0] for line in lines[2:5]]
    assert modules == ["tests/a.py", "tests/c.py", "tests/b.py"]
    assert lines[2].split()[1:6] == ["7.0", "3.0", "1.2", "1.8", "2"] and "nats-server=2" in lines[2]
    assert lines[4].split()[1:3] == ["1.0", "5.0"]
    lane = next(line for line in lines if line.strip().startswith("lane"))
    assert lane.split()[1:4] == ["function", "2", "0.8"]
    assert lines[-1] == "processes started: nats-server 2, gamead:serve 1"


def test_counting_starts_keeps_popens_signature_and_counts_a_start(monkeypatch: pytest.MonkeyPatch) -> None:
    """tests/forked_popen.py binds its arguments by ``Popen._execute_child``'s signature: a run with the timeline
    on failed 98 of its tests with ``KeyError: 'executable'`` when the counting wrapper hid it."""
    from tests import timeline
    from tests.support import ForkServer

    # the originals (unwrapped: in a run with the timeline on they are wrapped already)
    monkeypatch.setattr(subprocess.Popen, "_execute_child", inspect.unwrap(subprocess.Popen._execute_child))
    monkeypatch.setattr(ForkServer, "start", inspect.unwrap(ForkServer.start))
    monkeypatch.setitem(timeline._NOW, "procs", collections.Counter())
    before = inspect.signature(subprocess.Popen._execute_child)
    timeline._count_starts()
    assert inspect.signature(subprocess.Popen._execute_child) == before
    subprocess.run(["true"], check=True)
    assert timeline._NOW["procs"]["true"] == 1
