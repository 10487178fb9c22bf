"""``gamead up``'s stop is bounded and says its bound (rule 4, fix35d item 3): children that never act on their
SIGTERM (here the worker and the API, stopped by SIGSTOP by their recorded PIDs: a stand-in for a child that
ignores it) are SIGKILLed each past its own stop timeout and named in one line each; up says at the stop's start
the bound its whole stop keeps (``all of it within 41s, SIGKILL past it``: a worker's drain of 1 s + 5 s, the API's
15 s, nats-server's 10 s, its own 10 s), past which it SIGKILLs every child left and exits 1; it ends with no
process of it left; and its watches say no stall of their own during the stop. Figure, before: the stop ended
after 21.8 s with both lines, but no bound was said (nor kept for its own awaits: a watch's reading hung on a
stalled NATS held it, and a reading ended after the stop began was said as "this watch itself did not run for
31.7s")."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from gamead_cli.commands.up_stack import API_STOP_TIMEOUT, NATS_STOP_TIMEOUT
from gamead_core.scaling.local import STOP_GRACE
from gamead_core.stop_bound import up_bound
from tests.support import pid_alive, up_stack


@pytest.mark.timeout(300)
def test_children_that_ignore_their_sigterm_are_killed_named_and_up_ends_within_its_said_bound(
        tmp_path: Path) -> None:
    up = up_stack(tmp_path, "--workers", "1", "--no-autoscale", GAMEAD_WORKER__DRAIN_TIMEOUT="1",
                  GAMEAD_LOG__LEVEL="WARNING").start()
    try:
        up.wait_ready()
        worker, api = up.pid_of("worker-1"), up.pid_of("api")
        os.kill(worker, signal.SIGSTOP)
        os.kill(api, signal.SIGSTOP)
        assert up.popen is not None
        up.popen.send_signal(signal.SIGTERM)
        code = up.popen.wait(timeout=600)  # a deadline on the wait, not an assertion on the time taken
        out = up.output()
        bound = up_bound(1 + STOP_GRACE + API_STOP_TIMEOUT + NATS_STOP_TIMEOUT)
        assert code == 0, out[-3000:]
        assert f"again to hurry; all of it within {bound:g}s, SIGKILL past it) …" in out, out[-3000:]
        for name, pid in (("worker-1", worker), ("api", api)):
            said = [ln for ln in out.splitlines() if f"{name} (pid {pid}) did not stop within" in ln]
            assert len(said) == 1 and "of its SIGTERM; killed (SIGKILL)" in said[0], out[-3000:]
        assert "this watch itself did not run" not in out, out[-3000:]
        assert out.rstrip().endswith("stopped"), out[-3000:]
        assert not [p for p in up.ours_alive() if p != up.pid], up.ours_alive()
        assert not pid_alive(worker) and not pid_alive(api)
    finally:
        up.kill_everything()
