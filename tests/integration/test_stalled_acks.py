"""An API whose acks stop coming while its writes still land (the NATS→API direction stalled: attack33b F1) is
taken for dead by the reaper, which queues its records; the API, alive, must not then delete them. Real
nats-server, API and worker processes; a TCP proxy (:class:`tests.blackhole.BlackHole`) between the API and NATS
stalls the server→API direction only."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gamead_core.embedded import EmbeddedNats
from tests.blackhole import BlackHole
from tests.support import (
    Proc,
    ad,
    on_js,
    reaper_rounds,
    start_api,
    start_worker,
    wait_for,
)

#: a short registry.ttl (the API taken for dead 2 s after its last heartbeat); no redelivery
ENV = {"GAMEAD_REGISTRY__TTL": "2", "GAMEAD_REGISTRY__HEARTBEAT_INTERVAL": "0.5", "GAMEAD_QUEUE__ACK_WAIT": "30",
       "GAMEAD_LOG__LEVEL": "INFO"}
#: the API's writes wait 8 s for their acks (its record creates: nats.request_timeout), so its settling writes come
#: after the reaper's, as in the drill (there a reconnect held them back: its delete markers landed after the analyses)
API_ENV = {**ENV, "GAMEAD_NATS__REQUEST_TIMEOUT": "8", "GAMEAD_API__PUBLISH_TIMEOUT": "8"}
ADS = 12
OWNED = "queued by another meanwhile"


def _statuses(url: str, ids: list[str]) -> dict[str, str | None]:
    """ad id → its record's status (None: no record), read from the stream leader."""
    from gamead_core.errors import NotFound
    from gamead_core.store.ads import AdStore

    async def read(js: Any) -> dict[str, str | None]:
        store = AdStore(js._nc, js)
        out: dict[str, str | None] = {}
        for ad_id in ids:
            try:
                out[ad_id] = (await store.get(ad_id, consistent=True)).record.status.value
            except NotFound:
                out[ad_id] = None
        return out

    return dict(on_js(url, read))


def _analyses(url: str) -> int:
    """Analyses the workers count in their heartbeats."""

    async def read(js: Any) -> int:
        from gamead_core.config import load_settings
        from gamead_core.registry import Registry

        nodes = await Registry(js._nc, js, load_settings(None).registry).list()
        return sum(n.processed for n in nodes if n.role == "worker")

    return int(on_js(url, read))


@pytest.fixture
def server(fresh_nats: Callable[[], EmbeddedNats]) -> EmbeddedNats:
    return fresh_nats()


@pytest.fixture
def hole(server: EmbeddedNats) -> Iterator[BlackHole]:
    proxy = BlackHole((server.host, server.port)).start()
    yield proxy
    proxy.stop()


@pytest.mark.timeout(180)
def test_ads_the_reaper_queued_for_an_api_whose_acks_stalled_are_never_deleted_by_that_api(
        server: EmbeddedNats, hole: BlackHole, procs: list[Proc], tmp_path: Path) -> None:
    """attack33b F1: the API's NATS→API direction stalled; its record creates landed, their acks did not come, so
    its batch was answered "may be queued" ad by ad, and its heartbeat stopped. The reaper took it for dead and
    queued its records; a worker analysed them; then the live API's settling deleted the completed records: ``GET
    /ads/ID`` 404 ("not queued: safe to resend") for ads that were analysed. Now the API deletes a create only by
    compare-and-set on the revision it created, and the reaper re-puts a record by compare-and-set before its
    message: here every ad is completed and stays so (GET finds it completed, never 404), the API says they were
    queued by another, and the workers analysed each ad once."""
    api, url = start_api(f"nats://127.0.0.1:{hole.port}", tmp_path, **API_ENV)
    procs.append(api)
    worker = start_worker(server.url, tmp_path, worker_id="reaper-1", concurrency=4, ready=True, **ENV)
    procs.append(worker)
    with httpx.Client(base_url=url, timeout=30) as http:
        assert http.post("/ads", json=ad("Before the stall")).status_code == 202
        # the reaper lease held and renewed twice: the reaper has seen the API alive in the registry
        reaper_rounds(server.url)
        hole.stall_back()
        answer = http.post("/ads/batch", json={"ads": [ad(f"Stalled {i}") for i in range(ADS)]})
    assert answer.status_code == 200 and answer.json()["accepted"] == 0, answer.text[:500]
    errors = [r["error"] for r in answer.json()["results"]]
    assert {e["code"] for e in errors} == {"queue_unavailable"}, errors
    ids = [e["details"]["adId"] for e in errors]
    assert len(set(ids)) == ADS, errors

    # the creates landed; the API, silent, is taken for dead; the reaper queues them and the worker analyses each
    wait_for(lambda: _analyses(server.url) == ADS + 1, timeout=30, what="the worker to analyse each ad")
    assert worker.output().count("queued again: API") == ADS
    hole.open_up()

    # the API's acks come again: it settles its unanswered creates (before: it deleted them, completed or not)
    def settled() -> dict[str, str | None] | None:
        now = _statuses(server.url, ids)
        return now if OWNED in api.output() or None in now.values() else None

    after = wait_for(settled, timeout=60, what="the API to settle its unanswered creates")
    assert set(after.values()) == {"completed"}, f"records the API deleted after they were analysed: {after}"
    with httpx.Client(base_url=url, timeout=30) as http:
        def looked_up() -> dict[str, int] | None:
            codes = {ad_id: http.get(f"/ads/{ad_id}").status_code for ad_id in ids}
            return codes if 503 not in codes.values() else None

        codes = wait_for(looked_up, timeout=30, what="the API to answer GET /ads/ID again")
        assert set(codes.values()) == {200}, codes
        assert {http.get(f"/ads/{ad_id}").json()["status"] for ad_id in ids} == {"completed"}
    # each ad analysed once: no "not queued" ad was analysed, and no analysed ad was thrown away
    wait_for(lambda: _analyses(server.url) == ADS + 1, timeout=15, what="one analysis per ad")
    assert _statuses(server.url, ids) == after
