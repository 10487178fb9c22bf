"""The console line `gamead up` prints once its workers registered (gamead_cli/commands/up_ready.worker_line)."""

from __future__ import annotations

from gamead_cli.commands.up_ready import died_since, worker_line


def test_every_worker_registered_is_named_by_its_pid() -> None:
    assert worker_line({"worker-1": 11, "worker-2": 12}, [], 4) == "2 worker(s) registered (pid 11, 12), 4 slot(s) each"


def test_a_worker_that_died_since_it_registered_is_not_said_as_registered_under_its_restarts_pid() -> None:
    """attack52 F4: during a poison ad's crash loop, `✓ 3 worker(s) registered (pid 11, 15, 13)` named 15, the
    restart of worker-2 (pid 12, registered, then crashed): a process that had not registered. The line names the
    pid that registered and says what became of it."""
    line = worker_line({"worker-1": 11, "worker-2": 15, "worker-3": 13}, [], 4, {"worker-2": 12})
    assert line == ("3 worker(s) registered (pid 11, 12, 13), 4 slot(s) each; "
                    "since died: worker-2 (pid 12; restarted as pid 15)")
    # dead, its restart not begun yet (the supervisor's back-off): its pid now is still the dead one
    assert worker_line({"worker-1": 11, "worker-2": 12}, [], 4, {"worker-2": 12}).endswith(
        "since died: worker-2 (pid 12; restarting)")


def test_a_worker_still_starting_is_named_apart() -> None:
    assert worker_line({"worker-1": 11, "worker-2": 12}, ["worker-2"], 4) == (
        "1 of 2 worker(s) registered (pid 11), 4 slot(s) each; still starting: worker-2 (pid 12)")


def test_a_worker_is_said_dead_since_it_registered_when_its_pid_moved_or_its_process_ended() -> None:
    registered = {"worker-1": 11, "worker-2": 12, "worker-3": 13, "worker-4": 14}
    pids = {"worker-1": 11, "worker-2": 15, "worker-3": 13}  # worker-2 restarted; worker-4 stopped on purpose
    assert died_since(registered, pids, lambda name: name != "worker-3") == {"worker-2": 12, "worker-3": 13}
