"""clock33api's note: a worker's ``lastProgressAt`` defaulted to its host clock (``time.time``) until its first
analysis finished, while ``gamead workers`` judges it on nats-server's clock: a worker 5 min behind, holding
prefetched ads before its first analysis, showed ``stuck``. Before the first ad it now says its start on
nats-server's clock. Run in a child process whose ``time.time`` is 5 min behind before gamead is imported (as
tests/skewed_gamead.py does), with one sample of the true clock noted; a test through a real worker would need an
analysis held longer than the task timeout before any finished, which no test worker offers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

CHILD = """
import time
true_time = time.time
time.time = lambda: true_time() - 300.0
from gamead_core import clock
from gamead_core.registry.nodes import WorkerSelf, worker_node_info
from gamead_core.registry.wire import HeldAd
from gamead_core.worker.counters import WorkerStats
stats = WorkerStats()
sent = clock.local()
clock.CLOCK.note(sent, true_time(), clock.local())  # its first heartbeat's sample: nats-server's clock is true
held = HeldAd(ad_id="01HZZZZZZZZZZZZZZZZZZZZZZZ", delivery="1.1", ack_subject="$JS.ACK.x")
me = WorkerSelf(id="w-behind", concurrency=1, started=stats.started, in_flight=0, processed=0, failed=0,
                last_error=None, last_progress=stats.last_progress, recent=[], holding=[held], task_timeout=60.0,
                ack_wait=30.0, heartbeat_interval=2.0)
info = worker_node_info(me)
print(info.state, round(true_time() - info.last_progress_at.timestamp()))
"""


def test_a_worker_5_min_behind_holding_ads_before_its_first_analysis_is_not_stuck() -> None:
    done = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=60,
                          cwd=str(Path(__file__).resolve().parents[2]))
    assert done.returncode == 0, done.stderr
    state, behind = done.stdout.split()
    assert state != "stuck" and abs(int(behind)) < 60, done.stdout
