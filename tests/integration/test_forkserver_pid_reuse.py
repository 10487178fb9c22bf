"""The fork server's children (``tests.support.ForkServer``) are told apart by their start, not by their PID.

load59B: in a loaded ``make test`` (2 runs at once beside other helpers, load ~35), ``gamead workers --api
<closed URL>`` "exited 0" with empty stdout and stderr (tests/cli/test_stack_dir.py), and ``config show -o json``
"printed nothing" (test_stack_dir_parent.py), both on one pytest worker. The server reports a child's end as
``{"exit": pid}``, and the tests' side kept exit codes by PID: the kernel's PIDs wrap (``pid_max`` 32768 here, and
threads take them too), so a later child of the same server given a PID an earlier child had had was "ended" at
once with that child's code, before it had written a byte; and the earlier child's ``ForkedChild`` would have
looked alive again, its signals sent to the later one. Here the kernel is asked (``ns_last_pid``, root only) to
give the next process the PID of a child that has just ended, until the server's next child gets it."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.forked_popen import GameadPopen
from tests.support import ForkedChild, ForkServer, clean_env, gamead_argv

NS_LAST_PID = Path("/proc/sys/kernel/ns_last_pid")
#: starts tried before giving up: another process of this machine may fork between the write and our fork
TRIES = 30


def _writable() -> bool:
    return os.geteuid() == 0 and os.access(NS_LAST_PID, os.W_OK)


def _start_logged(server: ForkServer, args: list[str], out: Path) -> tuple[ForkedChild, Callable[[], tuple[int, str]]]:
    """``args`` forked as ``run_gamead`` forks it (stdout, stderr to files): the child, and its end (code, stderr)."""
    child = server.start(args, clean_env(), out.with_suffix(".out"), err=out.with_suffix(".err"))

    def end() -> tuple[int, str]:
        code, err = child.wait(60), out.with_suffix(".err")
        return code, err.read_text() if err.exists() else ""  # (not there yet: the child has not opened it)
    return child, end


def _start_piped(server: ForkServer, args: list[str], out: Path) -> tuple[GameadPopen, Callable[[], tuple[int, str]]]:
    """``args`` forked as ``gamead_run`` forks it (``GameadPopen``, pipes): the process, and its end (code, stderr)."""
    child = GameadPopen(gamead_argv(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                        env=clean_env(), text=True)

    def end() -> tuple[int, str]:
        _, err = child.communicate(timeout=60)
        return child.returncode, err
    return child, end


@pytest.mark.skipif(not _writable(), reason="choosing the next PID (ns_last_pid) needs root")
@pytest.mark.parametrize("start", [_start_logged, _start_piped], ids=["run_gamead", "GameadPopen"])
def test_a_child_given_an_earlier_childs_pid_has_its_own_exit_code(
        tmp_path: Path, closed_port: Callable[[], int], start: Callable[..., Any]) -> None:
    """Without the fix: ``workers`` given the PID of a ``--version`` that had ended answered 0 at once (the
    ``--version``'s code), its stderr still empty (2 failed); with it, its own exit 3 naming the URL."""
    server = ForkServer.get()
    assert server is not None, "the fork server is off (GAMEAD_TEST_FORKSERVER=0)"
    url = f"http://127.0.0.1:{closed_port()}"
    earlier = server.start(["--version"], clean_env(), tmp_path / "earlier.out")
    earlier_code = earlier.wait(60)
    assert earlier_code == 0
    for attempt in range(TRIES):
        NS_LAST_PID.write_text(str(earlier.pid - 1))  # the next process made on this machine gets earlier.pid
        later, end = start(server, ["workers", "--api", url], tmp_path / f"later{attempt}")
        if later.pid == earlier.pid:
            break
        end()  # another process forked first: try again
    else:
        pytest.fail(f"no child of the fork server got an ended child's PID in {TRIES} tries")
    code, err = end()
    assert (code, url in err) == (3, True), err
    assert earlier.returncode == earlier_code == earlier.poll()  # ended, as it was: not the later child
