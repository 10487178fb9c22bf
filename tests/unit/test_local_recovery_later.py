"""flakes52C: ``gamead up`` attaches its recovery of dead workers (:meth:`LocalScaler.attach_recovery`) once its
supervisor's NATS connection is up, which at load 40 was seconds after the stack said it was up; a worker killed
in between was restarted, but :meth:`LocalScaler.poll` dropped its death, so gamead up never recovered what it
held (the other worker's reaper did, after ``registry.ttl``: test_with_no_autoscale_a_killed_workers_ad_…, 'timed
out after 20s waiting for gamead up to log its recovery'). A death seen before the recovery is attached is now
recovered once it is. Real child processes under the real Supervisor; the worker command is a sleeping Python."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from gamead_core.scaling.local import LocalScaler
from gamead_core.supervisor import Supervisor
from tests.support import wait_for


def test_a_death_seen_before_the_recovery_is_attached_is_recovered_once_it_is(tmp_path: Path) -> None:
    """Before: the recovery attached after the restart was never called (the wait below timed out); after: it
    is called once, with the dead process's id and pid."""
    sup = Supervisor(on_event=lambda _: None)
    scaler = LocalScaler(sup, argv=lambda wid: [sys.executable, "-c", "import time; time.sleep(60)", "--id", wid],
                         env=dict(os.environ), log_dir=tmp_path, drain_timeout=1)
    calls: list[tuple[str, int]] = []
    try:
        scaler.set_replicas(1)
        child = sup.children["worker-1"]
        first = child.pid or 0
        os.kill(first, signal.SIGKILL)
        wait_for(lambda: (scaler.poll(), child.pid not in (None, first))[1], timeout=15, what="worker-1 restarted")

        async def attached() -> None:
            called = asyncio.get_running_loop().create_future()

            async def recover(worker_id: str, pid: int, registered: bool) -> None:
                calls.append((worker_id, pid))
                called.set_result(None)

            scaler.attach_recovery(recover)
            scaler.poll()
            await asyncio.wait_for(called, 10)

        asyncio.run(attached())
        assert calls == [("local-1", first)]
    finally:
        scaler.set_replicas(0)
        sup.stop_all(timeout=5)
