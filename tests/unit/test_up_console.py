"""stacks16 item 4: a second ``gamead up`` on a held ``--data-dir`` exits 5 (README's table: a configuration that
cannot work, as a port another stack holds; it exited 1), and warnings logged inside ``gamead up`` (the
autoscaler's lease, the reaper's recoveries) are console lines with its ``!`` prefix, not Python's bare
last-resort lines."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import pytest

from gamead_cli import exitcodes
from gamead_core.datadir import DataDir, DataDirBusy
from gamead_core.logs import ConsoleLines


def test_a_held_data_dir_is_exit_5(tmp_path: Path) -> None:
    holder = DataDir(tmp_path / "s")
    holder.lock()
    try:
        with pytest.raises(DataDirBusy) as refused:
            DataDir(tmp_path / "s").lock()
        assert exitcodes.exit_code_for(refused.value) == exitcodes.CONFIG == 5
        assert refused.value.code == "data_dir_busy"
    finally:
        holder.unlock()


def test_up_prints_a_logged_warning_as_one_prefixed_line_credentials_masked(capsys: pytest.CaptureFixture[str]) \
        -> None:
    from gamead_cli.commands import up_console

    handler = ConsoleLines(up_console.log_line)
    logger = logging.getLogger("gamead_core.scaling.lease.test")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)  # as gamead up sets gamead_core's loggers
    try:
        logger.warning("autoscaler lease: cannot reach the leases bucket: nats://u:secret@h:4222\n  refused")
        logger.info("not shown: below WARNING")
        logger.error("worker local-1 died [oops]")
        # the end of what a warning said is shown too (session 17: the console said the failure, never its end)
        logger.info("autoscaler lease: the leases bucket works again after 80 s (8 failed tries)",
                    extra={"ends_warning": True})
    finally:
        logger.removeHandler(handler)
    err = capsys.readouterr().err.splitlines()
    assert err == ["! autoscaler lease: cannot reach the leases bucket: nats://u:***@h:4222 refused",
                   "! worker local-1 died [oops]",
                   "✓ autoscaler lease: the leases bucket works again after 80 s (8 failed tries)"], err


def test_a_logged_exception_keeps_its_type_message_and_place_on_its_line() -> None:
    """review16: ``log.exception`` in ``gamead up``'s own process (a lease step, a supervisor hook) printed only
    its message: the traceback Python's last resort printed was lost, and up has no log file of its own."""
    lines: list[str] = []
    handler = ConsoleLines(lambda record, text: lines.append(text))
    logger = logging.getLogger("gamead_core.scaling.lease.test_exc")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        try:
            {}["leader"]
        except KeyError:
            logger.exception("autoscaler lease: step failed")
    finally:
        logger.removeHandler(handler)
    assert len(lines) == 1 and lines[0].startswith("autoscaler lease: step failed (KeyError: 'leader', at "
                                                   "test_up_console.py:"), lines


def test_a_child_serving_again_is_a_check_line_on_the_console(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """attack45 F2: the API refused 4 starts in a row (its port held), then served again: ``gamead up`` printed
    ``! api (pid N) is serving again, after 4 refused start(s) in a row``, a warning, where every other recovery
    line is ``✓``. Its refusals stay ``!``."""
    from gamead_cli.commands.up_stack import UpStack
    from gamead_core.config import GameadSettings
    from tests.support import wait_for

    data = DataDir(tmp_path / "data")
    data.path.mkdir()
    stack = UpStack(GameadSettings(), data)
    stack.sup.settled = True
    api = stack.sup.start("api", [sys.executable, "-c", "import sys; sys.exit(5)"], dict(os.environ),
                          tmp_path / "api.log")
    try:
        wait_for(lambda: (stack.sup.poll(), api.refusals >= 1)[1], timeout=20, what="a refusal")
        api.argv = sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
        wait_for(lambda: (stack.sup.poll(), api.alive and api.proc is not None and api.proc.args == sleeper)[1],
                 timeout=20, what="the api restarted and running")
        tries = api.refusals
        stack.sup.seen_up("api", api.pid)
        err = capsys.readouterr().err.splitlines()
        assert f"✓ api (pid {api.pid}) is serving again, after {tries} refused start(s) in a row" in err, err
        assert any(line.startswith("! api (pid ") and "refused to start" in line for line in err), err
    finally:
        stack.sup.stop_all(timeout=5)
