"""Prometheus metrics of a real API and two real workers on a fresh NATS: every ``/metrics`` parses with the
official parser, the series move after real work, the fleet's numbers add up (sum over workers of processed =
what the API accepted), ``/v1/workers`` lists each process's metrics address, and ``/v1/stats``' percentiles
lie in the bucket Prometheus' ``histogram_quantile()`` reads off the workers' summed buckets."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from gamead_core.telemetry.histogram import BUCKETS, quantile_bucket
from tests.ports import start_metered_worker
from tests.support import ad, start_api, wait_for, wait_terminal

ENV = {"GAMEAD_RATELIMIT__ENABLED": "false", "GAMEAD_REGISTRY__HEARTBEAT_INTERVAL": "0.5"}


def scrape(url: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """``{sample name: {sorted labels: value}}`` of one ``/metrics``, parsed by prometheus_client.parser."""
    text = httpx.get(url, timeout=5).text
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = defaultdict(dict)
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[s.name][tuple(sorted(s.labels.items()))] = s.value
    return out


def total(series: dict[tuple[tuple[str, str], ...], float], **want: str) -> float:
    return sum(v for labels, v in series.items() if all(dict(labels).get(k) == w for k, w in want.items()))


def test_metrics_move_and_add_up_across_the_fleet(fresh_nats, procs, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    nats = fresh_nats()
    api, url = start_api(nats.url, tmp_path, **ENV)
    procs.append(api)
    ports = []
    for i in range(2):
        worker, port = start_metered_worker(nats.url, tmp_path, worker_id=f"mw{i}", concurrency=2, ready=True, **ENV)
        procs.append(worker)
        ports.append(port)

    before = scrape(f"{url}/metrics")
    assert total(before.get("gamead_ads_submitted_total", {})) == 0
    per_priority = {1: 3, 2: 2, 5: 4}
    with httpx.Client(base_url=url, timeout=10) as client:
        ids = [client.post("/ads", json=ad(f"metrics {p}-{i}", priority=p)).json()["id"]
               for p, n in per_priority.items() for i in range(n)]
        for ad_id in ids:
            assert wait_terminal(client, ad_id)["status"] == "completed"
        client.get("/ads/00000000000000000000000000")  # a 404 on a templated route

        # /v1/workers names each process's metrics address
        def addresses() -> dict[str, str] | None:
            items = client.get("/v1/workers").json()["items"]
            found = {n["id"]: n.get("metricsUrl") for n in items}
            return found if all(found.get(f"mw{i}") for i in range(2)) and len(found) == 3 else None

        found = wait_for(addresses, what="every node's metricsUrl in /v1/workers")
    assert {found["mw0"], found["mw1"]} == {f"http://127.0.0.1:{p}/metrics" for p in ports}
    assert [u for k, u in found.items() if k.startswith("api-")] == [f"{url}/metrics"]

    api_m = scrape(f"{url}/metrics")
    submitted = api_m["gamead_ads_submitted_total"]
    for p, n in per_priority.items():
        assert total(submitted, priority=str(p)) == n
    # the fleet adds up: what the workers completed is what the API accepted
    # a worker counts an ad once its outcome's write and ack are done, a moment after the record reads completed:
    # scraped once they have all counted (then every series of the ad moved, in the same step)
    workers = wait_for(lambda: (ws := [scrape(f"http://127.0.0.1:{p}/metrics") for p in ports]) and sum(
        total(w["gamead_ads_processed_total"], outcome="completed") for w in ws) >= len(ids) and ws,
        what="the workers' completed counters")
    completed = sum(total(w["gamead_ads_processed_total"], outcome="completed") for w in workers)
    # each process exports only what it counts: no worker series (as 0s) on the API, no API series on a worker
    assert not [n for n in api_m if n.startswith(("gamead_ads_processed", "gamead_ad_wait", "gamead_dlq_added"))]
    assert not [n for w in workers for n in w if n.startswith(("gamead_ads_submitted", "gamead_http_"))]
    assert completed == total(submitted) == len(ids)
    assert sum(total(w["gamead_ad_processing_seconds_count"]) for w in workers) == len(ids)
    assert sum(total(w["gamead_ad_wait_seconds_count"], priority="5") for w in workers) == per_priority[5]
    # HTTP series: route templates, never an ad id
    http = api_m["gamead_http_requests_total"]
    assert total(http, route="/ads", method="POST", status="202") == len(ids)
    assert total(http, route="/ads/{ad_id}", method="GET", status="404") == 1
    assert not [labels for labels in http if any(v in ids for _, v in labels)]

    # queue gauges from the API's sampler: drained, so nothing waits on any level
    def drained() -> bool:
        m = scrape(f"{url}/metrics")
        backlog = m.get("gamead_queue_backlog", {})
        return len(backlog) == 5 and total(backlog) == 0 and total(m["gamead_queue_ack_pending"]) == 0
    wait_for(drained, what="queue gauges at 0 for all 5 levels")
    m = scrape(f"{url}/metrics")
    assert total(m["gamead_workers"], state="idle") + total(m["gamead_workers"], state="ok") == 2
    assert total(m["gamead_dlq_entries"]) == 0
    assert total(m["gamead_nats_connected"]) == 1

    # /v1/stats' p95 is read off the sum of the workers' buckets (histogram_quantile, then clamped to the
    # range observed and rounded): it says which bucket, the same as Prometheus' buckets give
    buckets = [0.0] * (len(BUCKETS) + 1)
    for w in workers:
        cumulative = w["gamead_ad_processing_seconds_bucket"]
        by_le: dict[str, float] = defaultdict(float)
        for labels, v in cumulative.items():
            by_le[dict(labels)["le"]] += v
        ordered = [by_le[str(b) if str(b) in by_le else f"{b}"] for b in BUCKETS] + [by_le["+Inf"]]
        for j, v in enumerate(ordered):
            buckets[j] += v - (ordered[j - 1] if j else 0)
    lo, hi = quantile_bucket(0.95, [int(c) for c in buckets])  # type: ignore[misc]

    def stats_p95() -> dict[str, Any] | None:
        lat = httpx.get(f"{url}/v1/stats", timeout=5).json()["latency"]["processingMs"]
        return lat if lat["count"] == len(ids) else None

    lat = wait_for(stats_p95, what="/v1/stats to count every completed ad")
    assert lat["estimate"]["bucketMs"]["p95"] == [lo * 1000, hi * 1000]
    assert lo * 1000 * 0.95 <= lat["p95"] <= hi * 1000 * 1.05  # in its bucket (2 significant digits)
