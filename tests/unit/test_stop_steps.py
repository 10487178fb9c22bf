"""Rule 4 leftovers (fix35d item 3): each await of a stop has its own deadline, a cut stop of ``gamead up`` SIGKILLs
what it started and names it, and a stop is no stall of ``gamead up``'s watches."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys

import pytest

from gamead_core.proc import CpuSample
from gamead_core.scaling.answers import Answer
from gamead_core.scaling.nats_watch import NatsWatch, Note, run_nats_watch
from gamead_core.scaling.probe import HeartbeatProbe, Watched, run_probe
from gamead_core.stop_bound import CUT_EXIT, within


def test_a_stop_step_that_swallows_its_cancellation_is_cut_and_the_next_one_runs(
        caplog: pytest.LogCaptureFixture) -> None:
    """The worker's ``_drain`` gathered its cancelled analyses and awaited its shielded settles, the API's lifespan
    its autoscaler's stop, settle round, heartbeat removal and NATS drain, each with no deadline of its own: one
    that never ends (here: a step that swallows its cancellation) held every step after it, to the process's
    bound (figure: the step after it never ran). Now it is cut after its own deadline, named, and the next runs."""
    ran = []

    async def stubborn() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            pass  # swallowed once (what a settle on a stalled NATS amounts to); the loop's end cancels it again
        await asyncio.sleep(3600)

    async def next_step() -> None:
        ran.append("next")

    async def stop() -> tuple[bool, bool]:
        first = await within(stubborn(), 0.2, "the stubborn step")
        second = await within(next_step(), 5, "the next step")
        return first, second

    with caplog.at_level(logging.WARNING, logger="gamead_core.stop_bound"):
        assert asyncio.run(asyncio.wait_for(stop(), 30)) == (False, True)
    assert ran == ["next"]
    assert "stopping: the stubborn step did not end within 0.2 s; cut, the stop goes on" in caplog.text


CUT = """
import asyncio, os, signal, subprocess, sys
from gamead_core.stop_bound import arm

child = subprocess.Popen([sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                          "print('ready', flush=True); time.sleep(300)"], stdout=subprocess.PIPE)
child.stdout.readline()  # its SIGTERM ignored from now on
print(child.pid, flush=True)

def kill_left():
    return f"killing (SIGKILL) worker-1 (pid {child.pid})", lambda: os.kill(child.pid, signal.SIGKILL)

async def main():
    os.kill(child.pid, signal.SIGTERM)  # ignored, as a stopped or wedged child's
    arm(1.0, "up", on_cut=kill_left)
    await asyncio.to_thread(child.wait)  # a stop waiting on it for ever

asyncio.run(main())
"""


def test_a_cut_stop_of_up_kills_the_child_that_ignored_its_sigterm_and_names_it() -> None:
    """``gamead up``'s stop past its bound: the child that ignored its SIGTERM is SIGKILLed (none is left) and the
    one line names it. Figure, before: ``arm`` had no ``on_cut``: the cut exited and left the child running."""
    done = subprocess.run([sys.executable, "-c", CUT], capture_output=True, text=True, timeout=60)
    pid = int(done.stdout.split()[0])
    assert done.returncode == CUT_EXIT, done
    line = next(li for li in done.stderr.splitlines() if "its stop did not end within its bound" in li)
    assert line.startswith("gamead up: its stop did not end within its bound of 1 s"), line
    assert f"; killing (SIGKILL) worker-1 (pid {pid})): exiting now, with code 1" in line, line
    from tests.support import pid_alive, wait_for

    wait_for(lambda: not pid_alive(pid), timeout=10, what="the child that ignored its SIGTERM to be gone")


NONE = Answer(False, "/healthz: no answer in 2s (ReadTimeout)")
OK = Answer(True, "/healthz answered 200")


def test_the_nats_watch_says_no_stall_of_its_own_once_the_stop_began() -> None:
    """``gamead up``'s stop printed "… but this watch itself did not run for 31.7s …": a reading that ended after
    the stop began counted the stop's time as the watch's own stall. Now a reading ended once the stop began says
    nothing and kills nothing (figure, before: that line, at the reading 32.7 s after the one before)."""
    clock, said, killed = [0.0], [], []
    stop = asyncio.Event()

    async def check(url: str) -> Answer:
        if not said and clock[0] == 0.0 and not stop.is_set() and check.calls == 0:  # type: ignore[attr-defined]
            check.calls = 1  # type: ignore[attr-defined]
            return OK
        stop.set()  # the stop begins while this reading waits
        clock[0] = 32.7
        return NONE

    check.calls = 0  # type: ignore[attr-defined]

    async def run() -> None:
        await run_nats_watch(NatsWatch(10.0), lambda: (7, -5.0), lambda: "http://x/healthz", said.append,
                             killed.append, stop, every=0.05, check=check, sample=lambda pid: CpuSample("T", 0.0),
                             clock=lambda: clock[0])

    asyncio.run(asyncio.wait_for(run(), 30))
    assert clock[0] > 30  # the reading across the stop happened
    assert said == [] and killed == [], [n.text for n in said if isinstance(n, Note)]


def test_the_liveness_probe_says_no_stall_of_its_own_once_the_stop_began() -> None:
    """The same for the probe of the workers and the API: a registry read that ended after the stop began, 31.7 s
    after the reading before, named the worker "… but this watch itself did not run for 31.7s …" (figure, before:
    one late line); now nothing is said of it."""
    clock, late, silent = [100.0], [], []
    stop = asyncio.Event()
    worker = Watched("worker-1", "local-1", 7, 100.0)
    reads = [0]

    async def read() -> list:
        reads[0] += 1
        if reads[0] > 1:
            stop.set()
            clock[0] += 31.7
        return []

    probe = HeartbeatProbe(10.0, every=0.5, start_grace=0.0)
    asyncio.run(asyncio.wait_for(run_probe(probe, read, lambda: [worker], lambda s, v: silent.append(s), stop, 0.05,
                                           sample=lambda pid: CpuSample("T", 0.0), clock=lambda: clock[0],
                                           on_late=late.append, host="h"), 30))
    assert reads[0] == 2
    assert late == [] and silent == [], (late, silent)
