"""review28 U2: a ``gamead up --die-with-parent`` refused its data dir (another stack holds it) started its parent
watch and its stop handlers before the lock, outside the try that ends them: an in-process caller (a CliRunner
test, an embedding tool) kept a thread that would SIGTERM it once its parent changed, and SIGTERM handlers that
only set a flag. Refused at the lock, it leaves neither."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from gamead_core.datadir import DataDir
from tests.cli.test_review_c4 import invoke, one_red_line

pytestmark = pytest.mark.usefixtures("isolated_env")


def test_up_refused_its_data_dir_leaves_no_parent_watch_nor_stop_handler_behind(
        tmp_path: Path, closed_port: Callable[[], int]) -> None:
    held = DataDir(tmp_path / "d")
    held.path.mkdir()
    held.lock()  # another stack's (a flock of another open file: refused to this process too)
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        code, _, err = invoke("up", "--die-with-parent", "--workers", "0", "--port", str(closed_port()),
                              "--data-dir", str(held.path))
        assert code == 5, err
        assert f"data dir {held.path} is in use by another `gamead up`" in one_red_line(err)
        assert [t.name for t in threading.enumerate() if t.name == "gamead-up-parent-watch"] == []
        assert {sig: signal.getsignal(sig) for sig in handlers} == handlers
    finally:
        held.unlock()
