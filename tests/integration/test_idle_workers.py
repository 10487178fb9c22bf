"""Issue 14.1: idle workers cost nothing. Three idle workers on a NATS of their own, ads submitted one at a time
through the real API: each ad is run by exactly one worker, and the workers read no queue heads to find it
(before, every ad's body went to every worker and woke each into 6-11 JetStream API calls)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx

from gamead_core import names
from gamead_core.embedded import EmbeddedNats
from tests.support import Proc, SubjectTap, ad, start_api, start_worker, wait_for, wait_terminal

ADS = 20
#: no periodic look at the heads during the test: what is counted is what the ads cause
QUIET = {"GAMEAD_QUEUE__IDLE_WAIT": "120"}


def test_idle_workers_are_woken_one_at_a_time_with_the_ad_itself(
    fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path
) -> None:
    server = fresh_nats()
    api, url = start_api(server.url, tmp_path)
    procs.append(api)
    workers = [start_worker(server.url, tmp_path, worker_id=f"idle-{k}", concurrency=2, ready=True, **QUIET)
               for k in range(3)]
    procs.extend(workers)
    with httpx.Client(base_url=url, timeout=20) as http:
        first = http.post("/ads", json=ad("Warm-up", priority=3)).json()["id"]  # every worker has looked once
        wait_terminal(http, first)
        infos = SubjectTap(server.url, f"$JS.API.CONSUMER.INFO.{names.ADS_STREAM}.>")
        pulls = SubjectTap(server.url, f"$JS.API.CONSUMER.MSG.NEXT.{names.ADS_STREAM}.>")
        try:
            # the API's stats sampler reads the 5 levels' heads every second, however long the ads take (a
            # starved machine's 20 ads can take seconds): its connection is learnt from its first round, while
            # the idle workers read nothing (queue.idle_wait 120 s), and its reads are not counted
            wait_for(lambda: infos.count >= len(names.LEVELS), timeout=20, what="a round of the API's sampler")
            api_reads = infos.senders()
            records = []
            for i in range(ADS):  # one at a time: every worker is idle when each arrives
                ad_id = http.post("/ads", json=ad(f"Idle {i}", priority=1 + i % 5)).json()["id"]
                records.append(wait_terminal(http, ad_id))
        finally:
            infos.close()
            pulls.close()
    assert {r["status"] for r in records} == {"completed"}
    assert all(r["attempts"] == 1 for r in records)  # each ad was handed to one worker, once
    # the workers read no heads to find an ad (the API's sampler's reads left out). Before: 3 workers × 5-10
    # consumer infos for every ad (300+ here)
    assert len(api_reads) == 1, api_reads  # one connection: the API's (an idle worker read nothing meanwhile)
    assert infos.count_from(api_reads, exclude=True) < ADS, (infos.count, infos.senders())
    # per ad about one pull request: the long poll that delivered it, put back (before: ≥ 3 per ad)
    assert pulls.count <= 2 * ADS, pulls.count
