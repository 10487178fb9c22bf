"""``gamead up`` says its workers run, and prints its hints, only once they have registered.

Before, it said "✓ 2 worker(s) (pid …)" and "Press Ctrl-C to stop." right after spawning them: a burst of ads
sent at the hints waited for the workers' start (submit→start p95 0.7-2.0 s against 0.1-0.2 s for a second
burst), and ``gamead workers`` listed none of them. Here every worker's start is made slow for real: a
``sitecustomize`` on the children's ``PYTHONPATH`` holds a ``gamead worker`` process for a few seconds before
its imports (as a loaded machine does), so without the wait the hints came long before the workers' first
registry heartbeat. Children are found by PID from ``gamead-up.json``."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest

from gamead_cli.commands import up_ready
from gamead_cli.commands.up_stack import UpStack
from gamead_core.config import GameadSettings
from gamead_core.datadir import DataDir
from gamead_core.embedded import EmbeddedNats
from gamead_core.scaling.local import LocalScaler
from tests.support import clean_env, gamead_argv, pid_alive, run_gamead, up_stack, wait_for

#: seconds a `gamead worker` process of the stack waits before its imports (its start made slow)
WORKER_DELAY = 8.0
#: seconds the API may take to list what the registry holds: it reads it once a second (its stats sampler), so
#: `gamead workers` run the instant the hints appear once listed nothing though both workers had registered (a
#: fresh clone's run, session 28). A deadline for a failure, not the test's measure: that was 4 s, under
#: WORKER_DELAY, and at load 40 one forked `gamead workers` and the API's read can take longer (flake56); what
#: tells a hint given too early is now each worker's ``startedAt`` (after its WORKER_DELAY) against the hints
API_READ_LAG = 60.0
FAST = {"GAMEAD_WORKER__DRAIN_TIMEOUT": "3", "GAMEAD_QUEUE__ACK_WAIT": "5", "GAMEAD_LOG__LEVEL": "WARNING"}


def worker_site(tmp_path: Path, *lines: str) -> str:
    """A ``PYTHONPATH`` whose ``sitecustomize`` runs ``lines`` first in every ``python -m gamead_cli worker``
    (``sys.argv`` is ``['-m', 'worker', …]`` there) and in no other process."""
    site = tmp_path / "worker-site"
    site.mkdir()
    body = "".join(f"    {line}\n" for line in lines)
    (site / "sitecustomize.py").write_text(f"import os, sys, time\nif sys.argv[1:2] == ['worker']:\n{body}")
    return os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)


@pytest.mark.timeout(300)
def test_the_hints_come_once_every_worker_has_registered(tmp_path: Path) -> None:
    up = up_stack(tmp_path, "--workers", "2", "--no-autoscale", **FAST,
                  PYTHONPATH=worker_site(tmp_path, f"time.sleep({WORKER_DELAY})"))
    up.start()
    try:
        output = up.wait_ready()  # the "Press Ctrl-C to stop." line, after the hints
        hints_seen = time.time()
        pids = {up.pid_of("worker-1"), up.pid_of("worker-2")}

        def listed() -> set[tuple[str, int, str]] | None:
            done = run_gamead("workers", "--api", up.url, "-o", "json", env=clean_env())
            assert done.returncode == 0, done.stderr
            found = {(n["id"], n["pid"], n["startedAt"]) for n in json.loads(done.stdout)["items"]
                     if n["role"] == "worker"}
            return found if {pid for _, pid, _ in found} == pids else None

        workers = wait_for(listed, timeout=API_READ_LAG, interval=0.2, what=f"both workers listed ({output[-2000:]})")
        assert {wid for wid, _, _ in workers} == {"local-1", "local-2"}, workers
        # each started (its WORKER_DELAY over) before the hints were seen: without up's wait they came first
        started = {wid: datetime.fromisoformat(at.replace("Z", "+00:00")).timestamp() for wid, _, at in workers}
        assert all(at < hints_seen for at in started.values()), (started, hints_seen)
        said = next(ln for ln in output.splitlines() if "worker(s) registered" in ln)
        assert said.startswith("✓ 2 worker(s) registered (pid ") and ", 4 slot(s) each" in said, said
        assert all(str(pid) in said for pid in pids), said
        assert output.index("worker(s) registered") < output.index("Next, in another terminal:")
        # newcomer56: --no-autoscale keeps --workers, so no local-3 or local-4 ever runs (before: "up to local-4")
        assert f"local-k on port {up.port}+k, up to local-2;" in output, output
    finally:
        up.kill_everything()


# a whole `gamead up`, ~4.3 CPU-s: ~90 s at load 40 on 2 cores, near the 120 s default; its own wait is 240 s
@pytest.mark.timeout(300)
def test_a_worker_refused_while_up_waits_for_it_to_register_ends_up_with_its_message(tmp_path: Path) -> None:
    """A worker that refuses its configuration (exit 5) before its first heartbeat ends ``gamead up`` as before
    the wait: its own message, exit 5, everything stopped; no hints. Its start is slow and its setting refused
    for real: ``queue.partitions`` 3 in that worker alone, against the stack's queue of 1 partition."""
    up = up_stack(tmp_path, "--workers", "1", "--no-autoscale", **FAST,
                  PYTHONPATH=worker_site(tmp_path, "time.sleep(1)", "os.environ['GAMEAD_QUEUE__PARTITIONS'] = '3'"))
    up.start()
    try:
        assert up.popen is not None
        code = up.popen.wait(timeout=240)
        output = up.output()
        assert code == 5, output[-3000:]
        assert "worker-1 refused to start; log: " in output and "partition" in output, output[-3000:]
        assert "Press Ctrl-C to stop." not in output and "worker(s) registered" not in output, output[-3000:]
        assert not [p for p in up.started() if pid_alive(int(p["pid"]))], up.started()
    finally:
        up.kill_everything()


def test_a_worker_that_does_not_register_is_named_and_up_goes_on_with_the_others(
        tmp_path: Path, fresh_nats: Callable[[], EmbeddedNats], monkeypatch: pytest.MonkeyPatch) -> None:
    """The wait is bounded as the API's start is: worker-2, a process asleep that never writes a heartbeat, is
    named after the stall window (here 2 s) and not waited for; worker-1, a real ``gamead worker``, registered,
    and the probe the wait observed with (the stack's liveness probe goes on with it) has seen it beat."""
    lines: list[str] = []
    monkeypatch.setattr(up_ready, "say", lines.append)
    server = fresh_nats()
    settings = GameadSettings(nats={"url": server.url}, metrics={"enabled": False})
    stack = UpStack(settings, DataDir(tmp_path / "data"))
    asleep = [sys.executable, "-c", "import time; time.sleep(600)"]
    scaler = LocalScaler(stack.sup, env=clean_env(GAMEAD_NATS__URL=server.url, GAMEAD_METRICS__ENABLED="false"),
                         argv=lambda wid: gamead_argv("worker", "--id", wid) if wid == "local-1" else asleep,
                         log_dir=tmp_path, drain_timeout=3)
    scaler.set_replicas(2)
    try:
        beats = up_ready.heartbeat_probe(settings)  # handed to the stack's liveness probe (flakes52C)
        starting = up_ready.wait_workers_registered(settings, server.url, stack, scaler, stall_after=2.0, cap=120.0,
                                                    note_after=60.0, probe=beats)
        pids = scaler.pids()
        assert starting == ["worker-2"], lines
        # the beats the wait saw are kept, a worker's that registered while another was still waited for too
        assert beats.beaten("worker-1", pids["worker-1"]) and not beats.beaten("worker-2", pids["worker-2"])
        named = [ln for ln in lines if "worker-2" in ln]
        assert len(named) == 1 and f"worker-2 (pid {pids['worker-2']}) has not registered after " in named[0], lines
        assert "its process made no progress for the last 2s" in named[0] and "going on without waiting" in named[0]
        assert not [ln for ln in lines if "worker-1" in ln], lines
        assert up_ready.worker_line(pids, starting, 4) == (
            f"1 of 2 worker(s) registered (pid {pids['worker-1']}), 4 slot(s) each; "
            f"still starting: worker-2 (pid {pids['worker-2']})")
        assert stack.sup.children["worker-1"].up and not stack.sup.children["worker-2"].up
    finally:
        stack.sup.stop_all(10)
