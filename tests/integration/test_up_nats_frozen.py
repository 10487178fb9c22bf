"""``gamead up`` watches its embedded nats-server's liveness (attack27 F4): a frozen one is named and restarted."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import httpx
import pytest

from tests.support import accepted_again, pid_alive, up_stack, wait_for, wait_terminal

#: small bounds so stops and redeliveries take seconds, not the production defaults
FAST = {"GAMEAD_WORKER__DRAIN_TIMEOUT": "3", "GAMEAD_QUEUE__ACK_WAIT": "5", "GAMEAD_LOG__LEVEL": "WARNING"}


@pytest.mark.timeout(300)  # a stack's start, a NATS restart and the API's and worker's reconnections, loaded machine
def test_a_frozen_nats_server_is_named_with_its_pid_and_state_killed_and_restarted_and_the_stack_works_again(
        tmp_path: Path) -> None:
    """attack27 F4: ``kill -STOP`` of the embedded nats-server left the stack answering 503 for as long as it
    lasted; the console named only the autoscaler's symptoms, never nats-server, and never restarted it. Now a
    server that does not answer its ``/healthz`` for ``registry.ttl`` (here 4 s) is named with its PID and state,
    SIGKILLed and restarted (a new PID in gamead-up.json), and a submitted ad completes again."""
    (tmp_path / "config.yaml").write_text("registry: {ttl: 4, heartbeat_interval: 0.5}\n")
    up = up_stack(tmp_path, "--workers", "1", "--max-workers", "1", **FAST).start()
    try:
        output = up.wait_ready()
        assert "/healthz" in next(ln for ln in output.splitlines() if "nats-server (JetStream" in ln)
        frozen = up.pid_of("nats-server")
        os.kill(frozen, signal.SIGSTOP)
        wait_for(lambda: f"nats-server (pid {frozen}) does not answer /healthz" in up.output(), timeout=60,
                 what="gamead up to name the frozen nats-server")
        line = next(ln for ln in up.output().splitlines() if f"nats-server (pid {frozen}) does not answer" in ln)
        assert "(registry.ttl 4s" in line and "(it is stopped: state T" in line
        assert "frozen or hung; killing it (SIGKILL) to restart it" in line
        wait_for(lambda: not pid_alive(frozen), timeout=10, what="the frozen nats-server to be killed")
        new = wait_for(lambda: (pid := up.running_pid("nats-server")) not in (None, frozen) and pid, timeout=30,
                       what="nats-server to be restarted with a new pid in gamead-up.json")
        assert pid_alive(new)
        assert up.output().count(f"nats-server (pid {frozen}) does not answer") == 1  # named once
        with httpx.Client(base_url=up.url, timeout=15) as client:
            ad_id = accepted_again(client, "After NATS Froze", timeout=60, what="the API to accept ads again")
            assert wait_terminal(client, ad_id, timeout=60)["status"] == "completed"
    finally:
        up.kill_everything()


@pytest.mark.timeout(300)
def test_a_monitoring_port_taken_during_a_restart_moves_and_nats_comes_back(tmp_path: Path) -> None:
    """attack27b F7: another process that took the nats-server's monitoring port while it restarted kept it from
    starting at all ("can't listen to the monitor port", exit 1 at every try): the whole stack without NATS for a
    liveness probe's port. Now the port moves to a free one before the restart, said on the console."""
    import socket

    (tmp_path / "config.yaml").write_text("registry: {ttl: 4, heartbeat_interval: 0.5}\n")
    up = up_stack(tmp_path, "--workers", "1", "--max-workers", "1", **FAST).start()
    squatter = socket.socket()
    try:
        output = up.wait_ready()
        start_line = next(ln for ln in output.splitlines() if "nats-server (JetStream" in ln)
        port = int(start_line.split("watched on http://127.0.0.1:")[1].split("/")[0])
        # a first death in a row is restarted at once (restart58): the squatter then won the port only by luck (the
        # final fresh clone of 9b167d1f: lost for 60 s). A death first, so that the frozen one's is the second
        # within HEALTHY_AFTER (30 s) of its life and its restart waits the back-off's 0.5 s
        first = up.pid_of("nats-server")
        os.kill(first, signal.SIGKILL)
        frozen = wait_for(lambda: (pid := up.running_pid("nats-server")) not in (None, first) and pid,
                          timeout=30, what="nats-server restarted after its first death")
        os.kill(frozen, signal.SIGSTOP)  # the watch kills it after the ttl; the port is taken as it dies

        def took_it() -> bool:
            try:
                squatter.bind(("127.0.0.1", port))
            except OSError:
                return False
            squatter.listen()
            return True

        wait_for(took_it, timeout=60, interval=0.005, what="the monitoring port to be free for the squatter")
        moved = f"the nats-server's monitoring port {port} is taken by another process: its /healthz moves to"
        wait_for(lambda: moved in up.output(), timeout=30, what="gamead up to move the monitoring port")
        new = wait_for(lambda: (pid := up.running_pid("nats-server")) not in (None, frozen) and pid, timeout=30,
                       what="nats-server to be restarted")
        assert pid_alive(new)
        with httpx.Client(base_url=up.url, timeout=15) as client:
            ad_id = accepted_again(client, "After The Port Moved", timeout=60, what="the API to accept ads again")
            assert wait_terminal(client, ad_id, timeout=60)["status"] == "completed"
    finally:
        squatter.close()
        up.kill_everything()
