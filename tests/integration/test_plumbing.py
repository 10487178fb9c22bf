"""The test suite's own promise (the guide's rule 4): what a test starts dies with pytest, however pytest dies.

``tests.support.Proc`` starts gamead processes through a fork server (``tests/forkserver.py``); a process of
the suite must still end when the pytest process that started it is SIGKILLed, as one started with
``Popen(preexec_fn=die_with_parent())`` does."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from gamead_core.embedded import EmbeddedNats
from tests.support import pid_alive, wait_for

#: a stand-in for a pytest process: starts a worker the way the tests do, says its PID, then waits to be killed
STAND_IN = """
import json, sys, time
from pathlib import Path
from tests.support import ForkServer, start_worker
worker = start_worker(sys.argv[1], Path(sys.argv[2]), worker_id="orphan-to-be", ready=True)
server = ForkServer.get()
print(json.dumps({"worker": worker.pid, "server": server.popen.pid if server else None, "forked": server is not None}),
      flush=True)
time.sleep(300)
"""


def test_a_process_the_suite_started_dies_with_the_pytest_process_that_started_it(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    root = Path(__file__).resolve().parents[2]
    stand_in = subprocess.Popen([sys.executable, "-c", STAND_IN, nats_server.url, str(tmp_path)], cwd=root,
                                stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(root)})
    try:
        assert stand_in.stdout is not None
        started = json.loads(stand_in.stdout.readline())
        assert pid_alive(started["worker"])
        stand_in.kill()  # SIGKILL: no teardown, no atexit
        stand_in.wait()
        if started["forked"]:  # (GAMEAD_TEST_FORKSERVER=0: the worker is the stand-in's own child)
            wait_for(lambda: not pid_alive(started["server"]), timeout=10, what="the fork server to exit")
        wait_for(lambda: not pid_alive(started["worker"]), timeout=30, what="the worker to exit")
    finally:
        if stand_in.poll() is None:
            stand_in.kill()
            stand_in.wait()
        for pid in (locals().get("started") or {}).values():
            if isinstance(pid, int) and pid_alive(pid):
                os.kill(pid, signal.SIGKILL)
