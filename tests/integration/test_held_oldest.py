"""attack30a F1: the oldest waiting ad of a level may be one a busy worker's long poll took and holds unstarted
(delivered: JetStream counts it ack pending, not pending; its record still ``queued``). ``/v1/stats``'
``oldestAgeSeconds`` / ``overHorizon`` (``gamead top``'s OLDEST) and ``gamead_queue_oldest_age_seconds`` read only
the queue's head, and left it out: a P5 ad held 12.9 s was shown as 7.7 s, not over its 8 s horizon. Real
nats-server, API and worker processes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from gamead_core.embedded import EmbeddedNats
from tests.long_polled import wait_long_polled, waiting_pulls
from tests.support import Proc, ad, hangs_once, start_api, start_worker, wait_for

#: beats every 0.5 s; one aging step of 1 s: priority 5's promised wait (aging horizon) is 4 s
ENV = {"GAMEAD_REGISTRY__HEARTBEAT_INTERVAL": "0.5", "GAMEAD_REGISTRY__TTL": "3", "GAMEAD_QUEUE__ACK_WAIT": "90",
       "GAMEAD_QUEUE__AGING_STEP": "1"}


def _level(client: httpx.Client, level: int) -> dict[str, Any]:
    return next(lv for lv in client.get("/v1/stats").json()["queue"]["levels"] if lv["priority"] == level)


def _gauge(client: httpx.Client, level: int) -> float | None:
    """``gamead_queue_oldest_age_seconds{priority=level}`` of the API's ``/metrics``."""
    return next((s.value for fam in text_string_to_metric_families(client.get("/metrics").text)
                 for s in fam.samples
                 if s.name == "gamead_queue_oldest_age_seconds" and s.labels.get("priority") == str(level)), None)


def test_an_ad_a_busy_workers_long_poll_holds_unstarted_counts_as_the_levels_oldest(
        fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path) -> None:
    """Worker 'one' (1 slot) runs 'Busy' (P1, hangs: ``worker.faults``) while 'Low' (P5) arrives: the idle-time
    long poll of P5 (living 120 s here) takes 'Low', and 'one' holds it for its next free slot. Level 5 then has
    nothing pending, 'Low' waits, ``queued``, unstarted: ``/v1/stats``' level 5 shows its age, over the 4 s horizon
    (``overHorizon``), and the gauge counts it too (before: ``oldestAgeSeconds`` null, the gauge 0)."""
    server = fresh_nats()
    api, url = start_api(server.url, tmp_path, **ENV)
    procs.append(api)
    with httpx.Client(base_url=url, timeout=30) as http:
        one = start_worker(server.url, tmp_path, worker_id="one", concurrency=1, ready=True, **ENV,
                           **hangs_once("Busy", task_timeout=120))
        procs.append(one)
        wait_long_polled(server.url)  # the premise (tests/long_polled.py): its long polls wait before 'Busy'
        http.post("/ads", json=ad("Busy", 1)).raise_for_status()
        wait_for(lambda: any(w["id"] == "one" and w["inFlight"] == 1 for w in http.get("/v1/workers").json()["items"]),
                 timeout=30, what="'one' to run 'Busy'")
        wait_for(lambda: waiting_pulls(server.url, (5,))[5], timeout=30, what="P5's long poll waiting beside 'Busy'")
        low = http.post("/ads", json=ad("Low", 5)).json()["id"]  # (the hunt at load 40: 'Low' stayed pending)

        level = wait_for(lambda: (lv := _level(http, 5))["overHorizon"] and lv, timeout=30, interval=0.2,
                         what="level 5 over its horizon")
        record = http.get(f"/ads/{low}").json()
        print(f"level 5: {level}; 'Low': {record['status']}, startedAt {record.get('startedAt')}")
        assert record["status"] == "queued" and not record.get("startedAt")  # held by 'one', not started
        assert level["pending"] == 0 and level["ackPending"] == 1  # taken by the long poll: JetStream's counts
        assert level["oldestAgeSeconds"] > level["agingHorizonSeconds"] == 4
        gauge = wait_for(lambda: (g := _gauge(http, 5)) is not None and g > 4 and g, timeout=10, interval=0.2,
                         what="the gauge of priority 5 past 4 s")
        assert gauge > 4
