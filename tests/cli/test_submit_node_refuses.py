"""fixsubmit38 (attack38a F1): ``gamead submit --count`` against an API node that refuses every ad for a cause of
its own — here ``topology_changed``: its ``queue.partitions`` no longer fits the work streams, repartitioned while
it ran — pauses and stops as for a store refusing every ad (one ``!`` line, one ad at a time tries again, sending
stopped after ``client.retry_for``, the rest ``notSent``), instead of sending every batch and counting each ad
rejected. Real nats-server, a real API node left on partitions 1, a real repartitioning worker and a real
``gamead submit`` process."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx

from gamead_core.embedded import EmbeddedNats
from tests.stale_node import SHORT_TTL, unlisted
from tests.support import Proc, clean_env, run_gamead, start_api, start_worker, wait_for

COUNT, RATE, BATCH = 200, 40, 10
FAST = {"GAMEAD_API__TOPOLOGY_CHECK_INTERVAL": "0.5", "GAMEAD_QUEUE__IDLE_POLL": "0.1"}


def test_a_run_against_a_node_left_on_old_partitions_says_so_pauses_and_stops(
        fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path) -> None:
    """A node on partitions 1 after the queue was repartitioned to 3 answers every batch 503 ``topology_changed``.
    Before: no line on stderr, ``outages: []``, every ad sent and counted rejected ``topology_changed`` (here
    200 of 200; attack38a: 1,020 over 2 min of a run, stderr empty). Now: one ``!`` line naming the code, a ``✗``
    line when sending stops after ``client.retry_for``, ``stoppedByOutage``, the ads never sent ``notSent``."""
    url = fresh_nats().url
    stale, stale_url = start_api(url, tmp_path, **FAST, **SHORT_TTL)  # queue.partitions 1, the default
    procs.append(stale)
    with unlisted(url, stale.pid):  # frozen past its entry's expiry: a live one refuses the repartition (attack42b)
        again = start_worker(url, tmp_path, worker_id="p3-once", ready=True, GAMEAD_QUEUE__PARTITIONS="3",
                             GAMEAD_QUEUE__REPARTITION="true", **FAST)  # the README's repartition, empty queue
        again.stop(timeout=10)
    with httpx.Client(base_url=stale_url, timeout=10) as http:
        wait_for(lambda: http.get("/readyz").status_code == 503, timeout=30, what="the stale node to notice")
        refused = http.post("/ads/batch", json={"ads": [{"title": "Probe", "genre": "RPG"}]})
        assert refused.status_code == 503 and refused.json()["error"]["code"] == "topology_changed", refused.text
    run = run_gamead("submit", "--count", str(COUNT), "--rate", str(RATE), "--batch-size", str(BATCH), "--title",
                     "Stale", "--genre", "RPG", "--api", stale_url, "-o", "json",
                     env=clean_env(COLUMNS="400", GAMEAD_CLIENT__RETRY_FOR="2"), cwd=tmp_path, timeout=180)
    said = " ".join(run.stderr.split())
    summary = json.loads(run.stdout)
    figures = {k: summary.get(k) for k in ("sent", "accepted", "rejected", "notSent", "outages", "stoppedByOutage",
                                           "stoppedBecause")}
    assert run.returncode == 1, (run.returncode, said, figures)
    assert "! " in said and "refuses every ad" in said and "(topology_changed: " in said, (said, figures)
    assert "✗ " in said and "sending stopped" in said, (said, figures)
    [outage] = summary["outages"]
    assert outage["cause"].startswith("topology_changed"), figures
    assert summary["stoppedByOutage"] is True and summary["accepted"] == 0, figures
    assert "topology_changed" in summary["stoppedBecause"], figures
    # the batches out until the first refusal came back, then one ad per probe: resent, then not sent at the stop
    # (outage46: until then those ads, certainly unsent, were counted rejected topology_changed)
    assert summary["rejectedByCode"] == {} and summary["notSent"] == COUNT, figures
