"""A session's servers end once the process is past their last user (tests/session_ends.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.session_ends import last_uses, past_last_use

ROOT = Path(__file__).resolve().parents[2]

_CONFTEST = '''
import pytest

@pytest.fixture(scope="session")
def nats_server(tmp_path_factory):
    log = tmp_path_factory.getbasetemp() / "log"
    with log.open("a") as out:
        out.write("up\\n")
    yield log
    with log.open("a") as out:
        out.write("down\\n")
'''

_TESTS = '''
def test_1_uses_it(nats_server):
    assert nats_server.read_text().split() == ["up"]

def test_2_does_not(tmp_path_factory):
    assert (tmp_path_factory.getbasetemp() / "log").read_text().split() == ["up", "down"]

def test_3_asks_again(request):
    log = request.getfixturevalue("nats_server")
    assert log.read_text().split() == ["up", "down", "up"]
'''


def test_a_server_is_torn_down_before_the_first_test_past_its_last_user_and_set_up_again_if_asked(
        tmp_path: Path) -> None:
    """Figure: without the plugin (``-p no:tests.session_ends``) test 2 read ``up`` alone: the server ran on to the
    session's end."""
    (tmp_path / "conftest.py").write_text(_CONFTEST)
    (tmp_path / "test_order.py").write_text(_TESTS)
    # only this plugin: the installed ones (hypothesis, schemathesis, Textual's snapshots, xdist) took 1.5 CPU-s to load
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:cacheprovider",
                          "-p", "tests.session_ends", "--basetemp", str(tmp_path / "base"), "test_order.py"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    assert (tmp_path / "base" / "log").read_text().split() == ["up", "down", "up", "down"]


def test_last_uses_and_who_is_past_them() -> None:
    order = [("nats_server", "stack"), ("tmp_path",), ("nats_cluster",), ("stack",), ()]
    last = last_uses(order)
    assert last == {"nats_server": 0, "stack": 3, "nats_cluster": 2}
    assert past_last_use(1, last) == ["nats_server"] and past_last_use(3, last) == ["nats_server", "nats_cluster"]
    assert sorted(past_last_use(4, last)) == ["nats_cluster", "nats_server", "stack"]
