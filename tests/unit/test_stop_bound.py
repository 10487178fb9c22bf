"""A stop cut by its bound (:mod:`gamead_core.stop_bound`) when it hangs past its event loop: interpreter exit
joining a thread that never ends. That is where a process exits at once on a later SIGTERM (its loop's handlers
gone, the default action back), as leak34's survivors did. Figure: without the bound, the probe below waits for
its 300 s thread; with it, exit 1 after 1 s, the line naming the thread."""

from __future__ import annotations

import subprocess
import sys

from gamead_core.stop_bound import CUT_EXIT

PROBE = """
import asyncio, threading
from gamead_core.stop_bound import arm

async def main():
    arm(1.0, "probe")
    threading.Thread(target=threading.Event().wait, args=(300,), name="never-joined").start()

asyncio.run(main())
"""


def test_a_stop_hung_in_interpreter_exit_is_cut_and_names_the_thread() -> None:
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60)
    assert done.returncode == CUT_EXIT, done
    assert "gamead probe: its stop did not end within its bound of 1 s" in done.stderr, done.stderr
    assert "its event loop has ended" in done.stderr and "threads not daemon: never-joined" in done.stderr
