"""``GET /metrics`` of the API app, driven in process (no lifespan, so no NATS): who may read it, what the
HTTP series count, and ``metrics.enabled: false``."""

from __future__ import annotations

import asyncio

import httpx
from prometheus_client.parser import text_string_to_metric_families

from gamead_core.api.app import create_app
from gamead_core.config import GameadSettings
from gamead_core.telemetry.metrics import (
    API_REGISTRY,
    WORKER_REGISTRY,
    WorkerMetrics,
    set_recording,
)

TOKENS = [{"name": "grafana", "token": "v" * 32, "role": "viewer"},
          {"name": "ci", "token": "s" * 32, "role": "submitter"}]


def call(settings: GameadSettings, *requests: tuple[str, dict[str, str]]) -> list[httpx.Response]:
    app = create_app(settings, "nats://127.0.0.1:1")

    async def go() -> list[httpx.Response]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://api") as client:
            return [await client.get(path, headers=headers) for path, headers in requests]

    try:
        return asyncio.run(go())
    finally:
        set_recording(True)


def series(text: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def test_every_role_may_scrape_and_no_token_may_not_when_auth_is_on() -> None:
    settings = GameadSettings(auth={"tokens": TOKENS}, ratelimit={"enabled": False})
    anonymous, viewer, submitter = call(settings, ("/metrics", {}),
                                        ("/metrics", {"Authorization": f"Bearer {'v' * 32}"}),
                                        ("/metrics", {"Authorization": f"Bearer {'s' * 32}"}))
    assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == "unauthenticated"
    assert viewer.status_code == submitter.status_code == 200
    assert viewer.headers["content-type"].startswith("text/plain; version=")  # the text exposition format


def test_open_without_a_token_when_auth_is_off_and_requests_are_counted_by_template() -> None:
    settings = GameadSettings(ratelimit={"enabled": False})
    before = series(call(settings, ("/metrics", {}))[0].text)
    *_, after_r = call(settings, ("/no/such/route/01abc", {}), ("/ads/01abcdef", {}), ("/metrics", {}))
    after = series(after_r.text)

    def count(**labels: str) -> float:
        want = tuple(sorted(labels.items()))
        return sum(v for k, v in after["gamead_http_requests_total"].items() if set(want) <= set(k)) - sum(
            v for k, v in before.get("gamead_http_requests_total", {}).items() if set(want) <= set(k))

    assert count(route="unmatched", status="404") == 1  # never the raw path
    assert not [k for k in after["gamead_http_requests_total"] if ("route", "/no/such/route/01abc") in k]
    assert after["gamead_nats_connected"][()] == 0  # no sample yet: NATS not reached
    assert "gamead_queue_backlog" not in after  # unknown, so absent rather than 0


def test_metrics_disabled_serves_no_metrics() -> None:
    (response,) = call(GameadSettings(metrics={"enabled": False}, ratelimit={"enabled": False}), ("/metrics", {}))
    assert response.status_code == 404




WORKER_ONLY = ("gamead_ads_processed", "gamead_ad_wait_seconds", "gamead_ad_processing_seconds", "gamead_dlq_added",
               "gamead_redeliveries", "gamead_poison_messages", "gamead_ads_left_for_newer",
               "gamead_records_recreated")
API_ONLY = ("gamead_ads_submitted", "gamead_replayed", "gamead_http_requests", "gamead_http_request_duration_seconds",
            "gamead_connections_refused", "gamead_connections_closed_for_room", "gamead_accept_failures",
            "gamead_connections_open",  # the connection bound's (review29 F9)
            "gamead_shared_reads",  # dashboards' DLQ and audit reads shared (attack37 F1)
            "gamead_ads_refused")  # ads refused before anything was sent: the storage gate's (left39a)


def test_each_process_exports_only_the_series_it_produces() -> None:
    # the API's /metrics said gamead_ads_processed_total 0 for every label after 2,000 ads (the workers count them)
    WorkerMetrics().completed(3, 0.01, 0.02)  # a worker's series moves in this process: still not the API's
    (response,) = call(GameadSettings(ratelimit={"enabled": False}), ("/metrics", {}))
    families = {f.name for f in text_string_to_metric_families(response.text)}
    assert not families & set(WORKER_ONLY), families & set(WORKER_ONLY)
    assert {"gamead_http_requests", "gamead_nats_connected", "process_cpu_seconds"} <= families
    api = {f.name for f in API_REGISTRY.collect() if f.name.startswith("gamead_")}
    worker = {f.name for f in WORKER_REGISTRY.collect() if f.name.startswith("gamead_")}
    both = {"gamead_direct_get_fallbacks",  # both roles make direct gets (gamead_core.queue.direct_read)
            "gamead_connections_refused", "gamead_connections_closed_for_room"}  # both bound their connections
    assert api == set(API_ONLY) | both and worker == set(WORKER_ONLY) | both
    assert {f.name for f in WORKER_REGISTRY.collect()} >= {"process_cpu_seconds", "python_info"}
