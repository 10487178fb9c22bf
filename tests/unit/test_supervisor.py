"""``gamead up`` restarts children that die, with a growing back-off."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest

from gamead_core.restart_streak import HEALTHY_AFTER, exit_words, streak_after_exit, streak_after_recovery
from gamead_core.supervisor import Child, Supervisor, restart_delay
from tests.support import wait_for

#: seconds a child that drains at once is given to exit after its SIGTERM before the supervisor SIGKILLs it
STOP_WAIT = 60.0


def test_restart_delay_grows_and_is_capped() -> None:
    delays = [restart_delay(n) for n in range(0, 10)]
    assert delays[0] == 0
    assert delays[1:5] == [0, 0.5, 1.0, 2.0]  # restart58: a first death in a row comes back at once
    assert all(a <= b for a, b in zip(delays, delays[1:]))
    assert max(delays) == 30.0


def test_a_worker_stopped_by_sigterm_again_and_again_comes_back_at_the_base_delay_each_time() -> None:
    """chaos47 F4: an operator's SIGTERM (exit 0) every 4 s counted as deaths in a row, so the worker waited 0.5, 1,
    2 … then 30 s to come back. An exit 0 restarts at the base delay and leaves the streak as it was."""
    streak, delays = 0, []
    for _ in range(8):  # each run lived 4 s, then exited 0
        streak, reckoned = streak_after_exit(streak, 4.0, 0)
        delays.append(restart_delay(reckoned))
    assert delays == [0] * 8 and streak == 0  # at once (restart58; 0.5 s before)
    # crashes still grow it; a clean exit between them neither grows nor forgets it
    streak, _ = streak_after_exit(streak, 1.0, -9)
    streak, reckoned = streak_after_exit(streak, 1.0, 3)
    assert (streak, restart_delay(reckoned)) == (2, 0.5)
    streak, reckoned = streak_after_exit(streak, 1.0, 0)
    assert (streak, restart_delay(reckoned)) == (2, 0)
    streak, reckoned = streak_after_exit(streak, 1.0, -9)
    assert (streak, restart_delay(reckoned)) == (3, 1.0)
    # a long life forgets the streak, as before
    assert streak_after_exit(streak, HEALTHY_AFTER, -9) == (1, 1)


def test_a_poison_ads_crashes_do_not_lengthen_the_back_off_but_a_crash_loop_still_doubles_it() -> None:
    """chaos48 F4: 4 poison ads in 9,000 crashed both workers of a ``gamead up`` 5 times each in turn; each crash
    grew the streak, both waited 30 s to come back, 1,886 ads still queued 4 min after the last submit. A death
    whose recovery found ads completed since the start resets the streak; one that charged the one ad it ran alone
    (the crash is that ad's) leaves it as it was; any other (nothing completed, no lone charge) grows it."""
    assert streak_after_recovery(4, 37, False) == 0  # it works: as after HEALTHY_AFTER s of life
    assert streak_after_recovery(4, 37, True) == 0
    assert streak_after_recovery(2, 0, True) == 2  # the crash is the ad's: not a death in a row
    assert streak_after_recovery(2, 0, False) is None  # broken for every ad, or its configuration: counted
    # the k1 run: one worker's deaths, the poison ad's first in a mix (none charged), then 5 lone charged crashes
    streak, delays = 0, []
    for lone in (False, True, True, True, True, True):
        before = streak
        streak, reckoned = streak_after_exit(streak, 2.0, 70)
        kept = streak_after_recovery(before, 0, lone)
        streak, reckoned = (streak, reckoned) if kept is None else (kept, 1)
        delays.append(restart_delay(reckoned))
    assert delays == [0] * 6, delays  # before chaos48: 0.5, 1, 2, 4, 8, 16; before restart58 0.5 each
    # a worker that crashes before completing anything, while not alone, keeps doubling
    streak, delays = 0, []
    for _ in range(9):
        before = streak
        streak, reckoned = streak_after_exit(streak, 2.0, 70)
        assert streak_after_recovery(before, 0, False) is None
        delays.append(restart_delay(reckoned))
    assert delays == [0, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]


def _next_death(sup: Supervisor, child: Child) -> int:
    """Restart ``child`` (a process exiting 3 at once) now if it waits, and poll ``sup`` until its process has died
    and its restart is set; return that process's pid."""
    if child.restart_at is not None:
        child.restart_at = 0.0  # restart now: this test is not about waiting
        wait_for(lambda: (sup.poll(), child.restart_at is None)[1], timeout=10, what="a restart")
    pid = child.pid
    wait_for(lambda: (sup.poll(), child.restart_at is not None)[1], timeout=10, what="a death")
    assert pid is not None
    return pid


def test_a_death_read_as_no_crash_loop_restarts_at_the_base_delay_and_leaves_the_streak(tmp_path: Path) -> None:
    """Supervisor.death_read: the recovery comes after the death's line set the delay (2 s at a 4th death in a row):
    a lone charge brings the restart to the death itself (at once, as a first death) and the streak back to 3,
    said on the console; a recovery of a death that is a crash loop, or of another process, changes nothing; ads
    completed reset it."""
    events: list[str] = []
    sup = Supervisor(on_event=events.append)
    child = sup.start("w", [sys.executable, "-c", "raise SystemExit(3)"], dict(os.environ), tmp_path / "w.log")
    try:
        for _ in range(4):
            pid = _next_death(sup, child)
        assert child.failures == 4 and "restarting in 2.0s" in events[-1]
        said, lines = child.restart_at, len(events)
        assert said is not None
        sup.death_read("w", pid, 0, False)  # no progress, no lone charge: a crash loop, it keeps its back-off
        sup.death_read("w", pid + 1, 0, True)  # not this death's process
        assert (child.failures, child.restart_at, len(events)) == (4, said, lines)
        sup.death_read("w", pid, 0, True)
        assert child.failures == 3 and child.restart_at is not None
        assert said - child.restart_at == pytest.approx(2.0, abs=0.01)
        assert "restarts as after a first death instead (its crash was the one ad it ran, charged" in events[-1]
        sup.death_read("w", pid, 0, True)  # read once: a second recovery of the same death changes nothing
        assert child.failures == 3
        pid = _next_death(sup, child)
        assert child.failures == 4 and "restarting in 2.0s" in events[-1]
        sup.death_read("w", pid, 12, False)
        assert child.failures == 0 and "(it completed 12 ads: no crash loop)" in events[-1]
        pid = _next_death(sup, child)
        assert "restarting at once" in events[-1]
        sup.death_read("w", pid, 0, True)  # its restart is at once already: nothing said
        assert child.failures == 0 and "restarting at once" in events[-1]
    finally:
        sup.stop_all(timeout=5)


def _kill_and_see_it_restarted(sup: Supervisor, child: Child) -> None:
    """SIGKILL ``child``'s process and poll ``sup`` until it runs again as another process (10 s)."""
    first = child.pid
    assert first is not None
    os.kill(first, signal.SIGKILL)

    def restarted() -> bool:
        sup.poll()
        return child.alive and child.pid != first

    wait_for(restarted, timeout=10, what="the child to be restarted")


def test_a_child_killed_by_sigkill_is_restarted(tmp_path: Path) -> None:
    events: list[str] = []
    sup = Supervisor(on_event=events.append)
    child = sup.start("sleeper", [sys.executable, "-c", "import time; time.sleep(60)"], dict(os.environ),
                      tmp_path / "sleeper.log")
    try:
        _kill_and_see_it_restarted(sup, child)
        assert child.restarts == 1
        assert any("died with signal 9" in e for e in events)
    finally:
        sup.stop_all(timeout=5)
    assert not sup.children


def test_a_child_given_a_command_function_is_restarted_with_the_command_it_builds_then(tmp_path: Path) -> None:
    """``gamead up`` starts each worker with a function building its command line, asked again at each restart
    (its /metrics port may have been taken while it was down): the restarted process runs the new line."""
    runs: list[str] = []

    def command() -> list[str]:
        runs.append(f"run-{len(runs) + 1}")
        return [sys.executable, "-c", f"import time; print({runs[-1]!r}, flush=True); time.sleep(60)"]

    sup = Supervisor(on_event=lambda _: None)
    child = sup.start("sleeper", command, dict(os.environ), tmp_path / "sleeper.log")
    assert runs == ["run-1"]
    wait_for(lambda: "run-1" in (tmp_path / "sleeper.log").read_text(), timeout=10, what="the first run")
    try:
        _kill_and_see_it_restarted(sup, child)
        wait_for(lambda: "run-2" in (tmp_path / "sleeper.log").read_text(), timeout=10, what="the second run")
        assert runs == ["run-1", "run-2"] and "run-2" in " ".join(child.argv)
    finally:
        sup.stop_all(timeout=5)


def test_stopping_sends_sigterm_and_does_not_restart(tmp_path: Path) -> None:
    script = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGTERM, lambda *a: (open(sys.argv[1], 'w').write('drained'), sys.exit(0)))\n"
        "open(sys.argv[1], 'w').write('ready')\n"
        "time.sleep(60)\n"
    )
    marker = tmp_path / "marker"
    sup = Supervisor(on_event=lambda _: None)
    child = sup.start("w", [sys.executable, "-c", script, str(marker)], dict(os.environ), tmp_path / "w.log")
    wait_for(lambda: marker.exists() and marker.read_text() == "ready", what="child ready")
    # the stop's SIGKILL bound, not a wait: it returns at the child's exit. 5 s was too short at load ~50 (load57:
    # "drained" written, the interpreter's exit not done 5 s later, SIGKILLed, -9)
    sup.stop("w", timeout=STOP_WAIT)
    assert marker.read_text() == "drained"
    assert child.proc is not None and child.proc.returncode == 0


def test_a_child_refusing_its_configuration_is_not_restarted_and_up_ends_with_its_whole_line(tmp_path: Path) -> None:
    """Exit code 5 (a configuration refusal): restarting cannot help. ``gamead up`` ends with the child's own
    ``error:`` line, whole (its fix included), "error:" once, exit code 5."""
    from gamead_cli import exitcodes
    from gamead_cli.commands.up_logs import refused_start

    fix = "x" * 300 + " (README: Partitions)"  # longer than the 240-character tail line up shows for a crash
    script = ("import sys\nprint('{\"level\": \"INFO\", \"msg\": \"starting\"}')\n"
              f"print('\\x1b[1;31merror: queue.partitions is 1 but {fix}\\x1b[0m', file=sys.stderr)\n"
              "print('{\"level\": \"INFO\", \"msg\": \"bye\"}')\nsys.exit(5)\n")
    events: list[str] = []
    sup = Supervisor(on_event=events.append, refusal_codes=frozenset({exitcodes.CONFIG}))
    child = sup.start("worker-1", [sys.executable, "-c", script], dict(os.environ), tmp_path / "worker-1.log")
    try:
        wait_for(lambda: (sup.poll(), sup.refused)[1], timeout=10, what="the refusal noticed")
        first = child.pid
        for _ in range(3):
            sup.poll()
        assert sup.refused == [child] and child.refused == 5 and child.pid == first and child.restarts == 0
        assert any("refused to start (exit code 5); not restarted" in e for e in events)
        err = refused_start(child)
        assert exitcodes.exit_code_for(err) == exitcodes.CONFIG
        assert err.message.startswith(f"queue.partitions is 1 but {fix} [worker-1 refused to start; log: ")
        assert "error:" not in err.message and "\x1b" not in err.message
    finally:
        sup.stop_all(timeout=5)


def test_a_child_that_exits_cleanly_is_not_said_to_have_died(tmp_path: Path) -> None:
    """A reviewer: a worker stopped with SIGTERM (it drains and exits 0) was reported as "died with exit code 0"."""
    events: list[str] = []
    sup = Supervisor(on_event=events.append)
    sup.start("w", [sys.executable, "-c", "import sys; sys.exit(0)"], dict(os.environ), tmp_path / "w.log")
    try:
        wait_for(lambda: (sup.poll(), any("exited cleanly" in e for e in events))[1], timeout=10,
                 what="a clean exit reported")
        assert not any("died" in e for e in events), events
    finally:
        sup.stop_all(timeout=5)


def test_on_end_is_told_when_a_child_dies_and_when_it_is_stopped_even_by_another_supervisor(tmp_path: Path) -> None:
    """What keeps ``gamead-up.json`` to the running processes: ``on_end`` hears of a death (before the restart)
    and of a stop, also when the child was moved to a supervisor of its own to be stopped (a local scale-down)."""
    ended: list[int] = []
    sup = Supervisor(on_event=lambda _: None, on_end=lambda child: ended.append(child.pid or 0))
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
    first = sup.start("a", sleeper, dict(os.environ), tmp_path / "a.log")
    other = sup.start("b", sleeper, dict(os.environ), tmp_path / "b.log")
    dead = first.pid
    assert dead is not None and ended == []
    os.kill(dead, signal.SIGKILL)
    wait_for(lambda: (sup.poll(), ended)[1] == [dead], timeout=10, what="the death told")
    wait_for(lambda: (sup.poll(), first.pid != dead and first.alive)[1], timeout=10, what="the restart")
    leaving = Supervisor(on_event=lambda _: None)  # as LocalScaler detaches a worker to drain it
    leaving.children["b"] = sup.children.pop("b")
    leaving.stop("b", timeout=5)
    sup.stop_all(timeout=5)
    assert ended == [dead, other.pid, first.pid]


def test_a_refusal_after_the_stack_is_up_is_one_line_and_a_restart_not_the_end_of_the_stack(tmp_path: Path) -> None:
    """A reviewer's repro stopped the whole stack: the API, restarted after ``kill -9``, refused its
    configuration (exit 5), and ``gamead up`` ended. A child started once the stack is up (``settled``: a restart,
    an autoscaled worker) that refuses is one event line with its reason, and is retried with back-off; the
    first start's refusal still ends the stack (test above)."""
    from gamead_cli import exitcodes

    script = "import sys\nprint('error: queue.partitions is 1 but the streams say 3', file=sys.stderr)\nsys.exit(5)\n"
    events: list[str] = []
    sup = Supervisor(on_event=events.append, refusal_codes=frozenset({exitcodes.CONFIG}),
                     explain=lambda child: child.log_path.read_text().strip().removeprefix("error: "))
    sleeper = sup.start("api", [sys.executable, "-c", "import time; time.sleep(60)"], dict(os.environ),
                        tmp_path / "api.log")
    sup.settled = True
    sleeper.argv = [sys.executable, "-c", script]  # its next start refuses, as with a changed configuration
    first = sleeper.pid
    assert first is not None
    os.kill(first, signal.SIGKILL)
    try:
        wait_for(lambda: (sup.poll(), sum("refused" in e for e in events) >= 2)[1], timeout=20,
                 what="the restarted child refused twice (retried with back-off)")
        assert sup.refused == [] and sleeper.restarts >= 2
        line = next(e for e in events if "refused" in e)
        assert line.startswith("api (pid ") and line.endswith("s")
        assert ("refused to start (exit code 5): queue.partitions is 1 but the streams say 3; the rest keeps "
                "running; retrying in ") in line
    finally:
        sup.stop_all(timeout=5)


def test_a_child_of_the_first_start_refused_once_seen_up_is_retried_not_the_end_of_the_stack(tmp_path: Path) -> None:
    """attack28b F1: a worker started with the stack, up for minutes, exited 5 (another node repartitioned the
    queue) and ``gamead up`` said "refused to start … not restarted" and stopped everything: the mark "a refusal
    of this process ends the stack" of a first-generation child was never cleared. Once a child was seen serving
    (:meth:`Supervisor.seen_up`), its exit 5 is one line saying it stopped (not "refused to start") with its
    reason, and a restart with back-off; one not seen up yet still ends the stack (its start's refusal)."""
    from gamead_cli import exitcodes

    late = ("import sys, time\ntime.sleep(1)\nprint('error: the queue has 3 partitions, this node is configured "
            "for 1', file=sys.stderr)\nsys.exit(5)\n")
    events: list[str] = []
    sup = Supervisor(on_event=events.append, refusal_codes=frozenset({exitcodes.CONFIG}),
                     explain=lambda child: child.log_path.read_text().strip().splitlines()[-1].removeprefix("error: "))
    worker = sup.start("worker-1", [sys.executable, "-c", late], dict(os.environ), tmp_path / "worker-1.log")
    starting = sup.start("worker-2", [sys.executable, "-c", late], dict(os.environ), tmp_path / "worker-2.log")
    sup.settled = True  # the stack is up; worker-1 beat (seen up), worker-2 has not yet
    first = worker.pid
    sup.seen_up("worker-1", first)
    sup.seen_up("worker-2", -1)  # another process's beat: not this one's
    try:
        wait_for(lambda: (sup.poll(), worker.restarts >= 1 and sup.refused)[1], timeout=20,
                 what="worker-1 restarted and worker-2's start refused")
        assert worker.pid != first and worker.refused is None and sup.refused == [starting]
        line = next(e for e in events if e.startswith(f"worker-1 (pid {first})"))
        assert line.startswith(f"worker-1 (pid {first}) stopped with exit code 5 after running "), line
        assert ("s (its configuration is refused now): the queue has 3 partitions, this node is configured for 1; "
                "the rest keeps running; retrying at once") in line, line
        assert any(e.startswith("worker-2 (pid ") and e.endswith("refused to start (exit code 5); not restarted")
                   for e in events), events
    finally:
        sup.stop_all(timeout=5)


def test_a_scale_down_stops_an_unhealthy_worker_before_a_healthy_one(tmp_path: Path) -> None:
    """A reviewer froze worker-1 of 3; the local autoscaler then scaled 3→2 by stopping a healthy worker (the
    newest). A scale-down now stops a worker that is dead (awaiting its restart) or unhealthy (silent heartbeat,
    :attr:`LocalScaler.unhealthy`) first, the newest only among equals."""
    from gamead_core.scaling.local import LocalScaler

    sup = Supervisor(on_event=lambda _: None)
    scaler = LocalScaler(sup, argv=lambda wid: [sys.executable, "-c", "import time; time.sleep(60)"],
                         env=dict(os.environ), log_dir=tmp_path, drain_timeout=1)
    try:
        scaler.set_replicas(4)
        scaler.unhealthy = lambda name: name == "worker-1"
        scaler.set_replicas(3)
        assert scaler.worker_names == ["worker-2", "worker-3", "worker-4"]
        dead = sup.children["worker-3"]
        os.kill(dead.pid or 0, signal.SIGKILL)
        wait_for(lambda: (sup.poll(), dead.restart_at is not None)[1], timeout=10, what="the death noticed")
        scaler.set_replicas(2)
        assert scaler.worker_names == ["worker-2", "worker-4"]
        scaler.set_replicas(1)  # both healthy: the newest goes
        assert scaler.worker_names == ["worker-2"]
    finally:
        scaler.set_replicas(0)
        sup.stop_all(timeout=5)


def test_a_child_killed_because_it_ignored_its_sigterm_is_named(tmp_path: Path) -> None:
    """An attack drill (session 23) saw Ctrl-C of ``gamead up`` wait and print only "stopped": the API had ignored
    its SIGTERM and was SIGKILLed in silence. Now the console says which child, after how long, and where its log
    is."""
    events: list[str] = []
    sup = Supervisor(on_event=events.append)
    ready = tmp_path / "ready"
    script = (f"import signal, time, pathlib; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
              f"pathlib.Path({str(ready)!r}).touch(); time.sleep(60)")
    child = sup.start("stubborn", [sys.executable, "-c", script], dict(os.environ), tmp_path / "stubborn.log")
    pid = child.pid
    try:
        wait_for(ready.exists, timeout=20, what="the child to ignore SIGTERM")
    finally:
        sup.stop_many(["stubborn"], timeout=0.5)
    assert not sup.children and child.proc is not None and child.proc.returncode == -signal.SIGKILL
    assert events == [f"stubborn (pid {pid}) did not stop within 0.5s of its SIGTERM; killed (SIGKILL); its log: "
                      f"{tmp_path / 'stubborn.log'}"], events


def test_a_start_that_cannot_be_recorded_keeps_the_stack_running(tmp_path: Path) -> None:
    """A drill (session 24): ``gamead-up.json`` could not be rewritten (a full disk; here its temp file is a
    directory) when a SIGKILLed worker was restarted; ``on_spawn`` (``DataDir.record``) raised through the
    supervisor and ``gamead up`` stopped every child, API and NATS included. Now the restart happens, the
    console names the failed record, and the record is whole again at the next write that succeeds."""
    from gamead_core.datadir import DataDir

    data = DataDir(tmp_path / "data")
    data.path.mkdir()
    events: list[str] = []
    sup = Supervisor(on_event=events.append, on_spawn=lambda c: data.record(c.name, c.pid or 0),
                     on_end=lambda c: data.forget(c.pid or 0))
    child = sup.start("worker-1", [sys.executable, "-c", "import time; time.sleep(60)"], dict(os.environ),
                      tmp_path / "w.log")
    try:
        blocker = data.state_file.with_suffix(".tmp")
        blocker.mkdir()  # every rewrite of the state file now fails (IsADirectoryError)
        _kill_and_see_it_restarted(sup, child)
        assert any(e.startswith(f"worker-1 (pid {child.pid}) runs, but its start could not be recorded: "
                                "IsADirectoryError") for e in events), events
        assert any(e == f"worker-1 restarted (pid {child.pid})" for e in events), events
        blocker.rmdir()
        _kill_and_see_it_restarted(sup, child)  # the next rewrite succeeds: the record is whole again
        assert [e["pid"] for e in data.live()] == [child.pid]
        assert f'"pid": {child.pid}' in data.state_file.read_text()
    finally:
        sup.stop_all(timeout=5)


def test_a_state_file_rewrite_that_failed_is_retried_until_it_names_the_running_pid(tmp_path: Path) -> None:
    """After a failed rewrite of ``gamead-up.json`` (its temp file a directory, as a full disk) the file named the
    dead worker's PID until some later start or stop rewrote it: ``gamead stop`` or a newcomer read a PID that no
    longer ran. Now the rewrite is retried at every poll (with back-off) once the obstacle is gone: the file
    names the restarted worker within a deadline, and the success is reported once (``gamead up`` says it)."""
    from gamead_core.datadir import DataDir

    data = DataDir(tmp_path / "data")
    data.path.mkdir()
    again: list[bool] = []
    sup = Supervisor(on_event=lambda _: None, on_spawn=lambda c: data.record(c.name, c.pid or 0),
                     on_end=lambda c: data.forget(c.pid or 0), on_poll=lambda: again.append(data.retry_write()))
    child = sup.start("worker-1", [sys.executable, "-c", "import time; time.sleep(60)"], dict(os.environ),
                      tmp_path / "w.log")
    try:
        first = child.pid
        blocker = data.state_file.with_suffix(".tmp")
        blocker.mkdir()  # every rewrite of the state file now fails (IsADirectoryError)
        _kill_and_see_it_restarted(sup, child)
        assert f'"pid": {first}' in data.state_file.read_text()  # stale: names the dead process
        blocker.rmdir()

        def names_the_running_pid() -> bool:
            sup.poll()  # no start or stop meanwhile: only the retry can rewrite it
            text = data.state_file.read_text()
            return f'"pid": {child.pid}' in text and f'"pid": {first}' not in text

        wait_for(names_the_running_pid, timeout=15, what="gamead-up.json to name the restarted worker")
        sup.poll()
        assert again.count(True) == 1  # said once
    finally:
        sup.stop_all(timeout=5)


def test_a_restart_that_cannot_start_its_process_is_retried_not_fatal(tmp_path: Path) -> None:
    """Whatever stops a restart's process from starting (no space for its log, no memory or PIDs for the fork:
    an ``OSError``) is one console line and another try after a longer back-off, not the end of the stack."""
    events: list[str] = []
    sup = Supervisor(on_event=events.append)
    logs = tmp_path / "logs"
    child = sup.start("api", [sys.executable, "-c", "import time; time.sleep(60)"], dict(os.environ),
                      logs / "api.log")
    try:
        first = child.pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        (logs / "api.log").unlink()
        logs.rmdir()
        logs.write_text("not a directory")  # the restart's log cannot be opened

        def said_it() -> bool:
            sup.poll()
            return any("could not be restarted" in e for e in events)

        wait_for(said_it, timeout=10, what="the failed restart to be said")
        line = next(e for e in events if "could not be restarted" in e)
        assert line.startswith("api could not be restarted (FileExistsError") and "retrying in 0.5s" in line, line
        logs.unlink()  # the cause goes away: the next try starts it
        wait_for(lambda: (sup.poll(), child.alive and child.pid != first)[1], timeout=10, what="the restart")
        assert any(e == f"api restarted (pid {child.pid})" for e in events), events
    finally:
        sup.stop_all(timeout=5)


def test_a_state_file_made_true_again_by_a_start_or_stop_is_said_once_too(tmp_path: Path) -> None:
    """A rewrite of ``gamead-up.json`` failed; the next one that succeeded was a start's or a stop's (``record`` /
    ``forget``), not the retry's: the failure count went back to 0 and "written again" was never said, though the
    console had said the start could not be recorded. Now any rewrite that succeeds after a failure is reported
    once, by the next ``retry_write``."""
    from gamead_core.datadir import DataDir

    data = DataDir(tmp_path / "data")
    data.path.mkdir()
    data.record("api", os.getpid())
    blocker = data.state_file.with_suffix(".tmp")
    blocker.mkdir()  # every rewrite of the state file now fails (IsADirectoryError)
    with pytest.raises(OSError):
        data.record("worker-1", os.getppid())
    blocker.rmdir()
    data.forget(os.getppid())  # a stop rewrites it before any retry: the file says what runs again
    assert f'"pid": {os.getpid()}' in data.state_file.read_text()
    assert [data.retry_write(), data.retry_write()] == [True, False]  # said once


def test_refusals_in_a_row_are_said_first_then_every_tenth_try() -> None:
    """review28 L2: one console line every 30 s for ever, or none: the first two refusals are said (the second
    with the count), then every 10th (about every 5 min at the 30 s back-off cap)."""
    from gamead_core.supervisor import refusal_said

    assert [n for n in range(1, 41) if refusal_said(n)] == [1, 2, 10, 20, 30, 40]


def test_a_child_refused_again_and_again_is_counted_and_listed_as_refused_until_it_serves(tmp_path: Path) -> None:
    """review28 L2: a child refused for good after the start (rotated NATS credentials, a repartition) was retried
    every 30 s for ever with the same line, the stack "up" and gamead-up.json listing its retries as started. It is
    still retried (the stack must not die), but the line says how many times in a row, and gamead-up.json lists
    it under "refused" (tries, reason) until it serves again, which is said."""
    import json

    from gamead_cli import exitcodes
    from gamead_core.datadir import DataDir

    data = DataDir(tmp_path / "data")
    data.path.mkdir()
    script = "import sys\nprint('error: NATS refuses the credentials', file=sys.stderr)\nsys.exit(5)\n"
    events: list[str] = []
    sup = Supervisor(on_event=events.append, refusal_codes=frozenset({exitcodes.CONFIG}),
                     on_spawn=lambda c: data.record(c.name, c.pid or 0), on_end=lambda c: data.forget(c.pid or 0),
                     explain=lambda child: child.log_path.read_text().strip().splitlines()[-1].removeprefix("error: "),
                     on_refused=lambda child, why: data.refused(child.name, child.refusals, why),
                     on_up=lambda child: data.serving(child.name))
    sup.settled = True
    api = sup.start("api", [sys.executable, "-c", script], dict(os.environ), tmp_path / "api.log")

    def refused() -> list[dict[str, object]]:
        return json.loads(data.state_file.read_text())["refused"]

    try:
        wait_for(lambda: (sup.poll(), api.refusals >= 2)[1], timeout=20, what="two refusals in a row")
        lines = [e for e in events if "refused to start" in e]
        assert len(lines) == 2 and "times in a row" not in lines[0], lines
        assert ("refused to start (exit code 5) (2 times in a row: retried for as long as it is refused, said "
                "every 10 tries): NATS refuses the credentials; the rest keeps running; retrying in ") in lines[1]
        listed = refused()
        assert [(r["name"], r["tries"], r["reason"]) for r in listed] == [("api", 2, "NATS refuses the credentials")]
        api.argv = sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]  # its configuration is accepted
        wait_for(lambda: (sup.poll(), api.alive and api.proc is not None and api.proc.args == sleeper)[1],
                 timeout=20, what="the api restarted and running")
        tries = api.refusals
        sup.seen_up("api", api.pid)
        assert refused() == [] and api.refusals == 0
        assert events[-1] == f"api (pid {api.pid}) is serving again, after {tries} refused start(s) in a row"
    finally:
        sup.stop_all(timeout=5)


def test_only_the_restart_after_a_first_refusal_is_said() -> None:
    """attack28c F3: a child refused again and again printed ``restarted (pid …)`` at every retry, between refusal
    lines said only at the 1st, 2nd and every 10th: its restart is said after its first refusal only (and after
    any exit that was no refusal, 0)."""
    from gamead_core.supervisor import restart_said

    assert [n for n in range(0, 41) if restart_said(n)] == [0, 1]


def test_a_child_refused_in_a_row_is_not_said_restarted_at_every_retry(tmp_path: Path) -> None:
    """attack28c F3: refused 4 times in a row, the console says ``restarted`` once (after its first refusal), not
    at every retry; once it dies of something else (exit 1, no refusal), its restart is said again."""
    from gamead_cli import exitcodes

    events: list[str] = []
    # back-offs of 0.05-0.8 s, not 0.5-8 s: the same restarts in a row, said or not, in 2 s of waiting instead of 15
    sup = Supervisor(on_event=events.append, refusal_codes=frozenset({exitcodes.CONFIG}), restart_backoff=(0.05, 30.0))
    sup.settled = True
    worker = sup.start("worker-1", [sys.executable, "-c", "import sys; sys.exit(5)"], dict(os.environ),
                       tmp_path / "worker.log")
    try:
        wait_for(lambda: (sup.poll(), worker.refusals >= 4)[1], timeout=30, what="four refusals in a row")

        def restarts() -> int:
            return sum(e.startswith("worker-1 restarted (pid ") for e in events)

        assert restarts() == 1, events
        worker.argv = [sys.executable, "-c", "import sys; sys.exit(1)"]  # dies, but is no refusal now
        wait_for(lambda: (sup.poll(), any("died with exit code 1" in e for e in events))[1], timeout=60,
                 what="the crash said")
        wait_for(lambda: (sup.poll(), restarts() == 2)[1], timeout=60, what="the restart after the crash said")
    finally:
        sup.stop_all(timeout=5)


def test_a_child_that_exits_with_the_injected_crash_faults_code_is_said_to_be_that_fault(tmp_path: Path) -> None:
    """attack29a note: ``gamead up``'s console said "worker-2 (pid …) died with exit code 70" while fault
    injection (mode crash) was on, without saying 70 is that fault. Now the line says so; with faults off, 70
    is a plain exit code."""
    from gamead_cli.commands.up_stack import exit_meanings
    from gamead_core.config import load_settings

    crash = load_settings(worker={"faults": {"rate": 0.5, "mode": "crash"}})
    assert exit_meanings(load_settings()) == {}
    events: list[str] = []
    sup = Supervisor(on_event=events.append, exit_meanings=exit_meanings(crash))
    sup.start("worker-2", [sys.executable, "-c", "import os; os._exit(70)"], dict(os.environ), tmp_path / "w.log")
    try:
        wait_for(lambda: (sup.poll(), any("died with" in e for e in events))[1], timeout=30, what="the death said")
        assert any("died with exit code 70 (the injected crash fault); restarting " in e for e in events), events
    finally:
        sup.stop_all(timeout=5)


@pytest.mark.parametrize(("code", "words", "death"), [
    (0, "exited cleanly (exit code 0: stopped from outside, e.g. a SIGTERM)", False),
    (-15, "was stopped by SIGTERM (signal 15, sent from outside)", False),
    (-2, "was stopped by SIGINT (signal 2, sent from outside)", False),
    (-1, "was stopped by SIGHUP (signal 1, sent from outside)", False),
    (-9, "died with signal 9 (SIGKILL)", True),
    (-11, "died with signal 11 (SIGSEGV)", True),
    (-200, "died with signal 200", True),
    (70, "died with exit code 70 (the injected crash fault)", True),
    (3, "died with exit code 3", True),
])
def test_the_console_names_the_exit_and_a_stop_from_outside_is_no_death(code: int, words: str, death: bool) -> None:
    """attack47 F9: an operator's SIGTERM to the API read "api (pid …) died with signal 15" and grew the restart
    streak as a crash does. A stop by SIGTERM, SIGINT or SIGHUP is said as one and restarts at the base delay."""
    assert exit_words(code, {70: "the injected crash fault"}) == words
    streak, reckoned = streak_after_exit(2, 1.0, code)
    assert (streak, reckoned) == ((3, 3) if death else (2, 1))
