"""attack25d #13: top's "failed 1.4 ads/s" (``failedPerSec``) was failed attempts per second, retries included,
while 0.25 ads/s were dead-lettered. Now two figures, each named for what it counts: ``retriedPerSec`` (failed
attempts to be retried, "attempts/s") and ``deadLetteredPerSec`` (ads dead-lettered, "ads/s")."""

from __future__ import annotations

import io
import re
from datetime import datetime, timezone
from types import SimpleNamespace

from rich.console import Console

from gamead_cli.tui.view import Snapshot, snapshot_view
from gamead_core.config import GameadSettings
from gamead_core.registry import NodeInfo
from gamead_core.registry.nodes import WorkerSelf, worker_node_info
from gamead_core.stats.reading import QueueReading
from gamead_core.stats.sampler import QueueSampler

T0 = 1_800_000_000.0


def test_a_worker_heartbeat_says_how_many_of_its_failures_were_dead_lettered() -> None:
    me = WorkerSelf(id="w", concurrency=2, started=T0, in_flight=0, processed=5, failed=7, last_error=None,
                    last_progress=T0, recent=[], holding=[], task_timeout=60.0, ack_wait=30.0, dead=2)
    beat = NodeInfo.model_validate_json(worker_node_info(me, now=T0).model_dump_json(by_alias=True))
    assert (beat.failed, beat.dead) == (7, 2)


def test_retried_attempts_and_dead_lettered_ads_are_two_rates() -> None:
    started = datetime.fromtimestamp(T0 - 100, timezone.utc)
    now = [T0]
    sampler = QueueSampler(SimpleNamespace(nc=None, js=None), GameadSettings(), node_id="api-1",
                           clock=lambda: now[0], sections=False)
    for i in range(61):  # a minute in which the worker failed 84 attempts: 69 retried, 15 ads dead-lettered
        now[0] = T0 + i
        node = NodeInfo(id="local-1", role="worker", host="h", pid=1, version="0", started_at=started,
                        heartbeat_at=datetime.fromtimestamp(now[0], timezone.utc), concurrency=2,
                        processed=1000 + 7 * i, failed=200 + round(84 * i / 60), dead=50 + i // 4)
        sampler._append(sampler._derive(QueueReading(t=now[0], connected=True, last_seq=5000, nodes=(node,))))
    stats = sampler.stats()
    rates = stats["rates"]
    assert "failedPerSec" not in rates
    assert rates["deadLetteredPerSec"] == 0.25  # 15 ads in 60 s
    assert rates["retriedPerSec"] == 1.15  # 69 attempts in 60 s
    out = io.StringIO()
    Console(file=out, width=160, no_color=True).print(snapshot_view(Snapshot(stats=stats), "http://api"))
    text = out.getvalue()
    assert re.search(r"retried +1\.[12] attempts/s", text), text
    assert re.search(r"dead +0\.25 ads/s", text), text  # 2 significant digits below 1 (polish47: 0.2)
    assert "failed" not in text.split("throughput")[1].split("nodes")[0]
