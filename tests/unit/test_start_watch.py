"""stacks16 item 3: ``gamead up`` waits on its API's start while the process makes progress (its CPU time
advances, or it waits for a CPU or a disk), up to a cap, instead of a fixed 30 s. Pure: readings given."""

from __future__ import annotations

from gamead_core.proc import CpuSample
from gamead_core.start_watch import StartWatch


def test_a_start_that_keeps_using_cpu_is_waited_for_past_the_stall_window_up_to_the_cap() -> None:
    watch = StartWatch(started=100.0, stall_after=30.0, cap=180.0)
    cpu = 0.0
    for second in range(0, 179, 10):  # 18.6 s of wall for 3.3 s of CPU, and slower still
        cpu += 0.2
        assert watch.observe(100.0 + second, CpuSample("S", cpu)) == "wait", second
    assert watch.observe(280.0, CpuSample("S", cpu + 1)) == "cap"


def test_a_start_without_progress_stalls_after_the_window_and_waiting_for_a_cpu_is_progress() -> None:
    watch = StartWatch(started=0.0, stall_after=30.0)
    assert watch.observe(0.0, CpuSample("S", 1.0)) == "wait"
    assert watch.observe(20.0, CpuSample("R", 1.0)) == "wait"  # runnable: starved of CPU, not stuck
    assert watch.observe(40.0, CpuSample("S", 1.01)) == "wait"  # 0.01 s of CPU (a retry loop): no progress
    assert watch.observe(49.9, CpuSample("S", 1.02)) == "wait"
    assert watch.observe(50.0, CpuSample("S", 1.03)) == "stalled" and watch.idle_for(50.0) == 30.0
    gone = StartWatch(started=0.0, stall_after=5.0)
    assert gone.observe(5.0, None) == "stalled"  # unreadable: no evidence of progress


def test_the_note_is_due_once_after_its_delay() -> None:
    watch = StartWatch(started=0.0, note_after=15.0)
    assert not watch.note_due(14.9)
    assert watch.note_due(15.0) and not watch.note_due(40.0)


def test_once_it_answers_its_start_is_done_and_cpu_no_longer_buys_time() -> None:
    """review16: an API retrying an unreachable NATS (``GAMEAD_NATS__URL=nats://127.0.0.1:1``) answers /readyz 503
    and uses ~0.02 s of CPU every 5 s, often read in state R on a loaded machine: ``gamead up`` took that for a
    slow start and waited 188 s (the cap), saying "a loaded machine makes its start slow". Once the process
    answers, it gets ``stall_after`` s to be ready, CPU or not, and no "still starting" note."""
    watch = StartWatch(started=0.0, stall_after=30.0, cap=180.0, note_after=15.0)
    assert watch.observe(5.0, CpuSample("R", 3.0)) == "wait"
    watch.serving(6.0)
    watch.serving(9.0)  # the first answer counts
    cpu = 3.0
    for second in range(10, 36, 5):
        cpu += 0.5  # busy, runnable: no matter
        assert watch.observe(float(second), CpuSample("R", cpu)) == "wait", second
        assert not watch.note_due(float(second))
    assert watch.observe(36.0, CpuSample("R", cpu + 1)) == "unready"
