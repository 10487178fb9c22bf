"""left39b item 4: ``DataDir.lock`` made the data dir and its lock file, then ``flock``-ed it: a SIGTERM (or Ctrl-C,
SIGHUP) landing between the two ended ``gamead up`` with the new data dir left behind, its ``gamead-up.lock`` naming
no holder (figure, before: the directory and its empty lock file there in both cases below). Now the lock is whole
or undone: the signals are held back while it runs, and one that came is acted on once the lock is dropped again and
the directories it made removed.

A real process each (a child Python), its own real signal: the child sends itself SIGTERM at the point of the window,
just before the real ``flock`` (the one thing wrapped, to place the signal there)."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

CHILD = r"""
import fcntl, os, signal, sys
from pathlib import Path
from gamead_core.datadir import DataDir

real = fcntl.flock
def flock(fd, op):  # the lock file exists now, not yet locked: the window
    os.kill(os.getpid(), signal.SIGTERM)
    return real(fd, op)
fcntl.flock = flock
if sys.argv[2] == "raises":  # as gamead_cli.first_signals while a command starts: SIGTERM as Ctrl-C
    def stop(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, stop)
else:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
data = DataDir(Path(sys.argv[1]))
try:
    data.lock()
except KeyboardInterrupt:
    print("interrupted", flush=True)
    sys.exit(130)
print("locked", flush=True)
"""


@pytest.mark.parametrize("handler", ["raises", "default"])
def test_a_signal_while_the_data_dir_is_locked_leaves_nothing_behind(tmp_path: Path, handler: str) -> None:
    """The data dir ``new/d`` does not exist; the child is stopped by SIGTERM inside ``lock``: as a
    :class:`KeyboardInterrupt` (``raises``: exit 130, "interrupted") or by the signal's default action (killed by
    SIGTERM). Either way ``new`` — every directory the lock made — is gone."""
    made = tmp_path / "new"
    done = subprocess.run([sys.executable, "-c", CHILD, str(made / "d"), handler], capture_output=True, text=True,
                          timeout=60, check=False)
    if handler == "raises":
        assert (done.returncode, done.stdout.strip()) == (130, "interrupted"), done.stderr
    else:
        assert done.returncode == -signal.SIGTERM, (done.returncode, done.stdout, done.stderr)
    left = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    assert left == [], left  # before: ['new', 'new/d', 'new/d/gamead-up.lock'], the lock file empty
