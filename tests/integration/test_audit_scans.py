"""attack39a F1: ``GET /v1/audit`` had no bound on reads at once: 20 concurrent pages of one viewer token (distinct
filters, so none shared) over 100,000 records took the API from 388 to 729 MB, answered 6-8 of them 503
``queue_unavailable`` (NATS was fine) and made the submitter's p95 1,052 ms against 51 ms. Now ``audit.scans``
operator reads run at once per node, as many wait, more get 503 ``list_busy`` naming the setting; watchers'
(``Cache-Control: max-age``, a viewer's token) have ``audit.watch_scans`` of their own. The API in-process over a
real nats-server behind a proxy that holds each read's stream-info request 1 s, so the first read is certainly
still running when the others arrive. Only that request: the proxy holds a connection's bytes in order, so holding
every JetStream API request queued each read's consumer create, pulls and delete behind the others' (the CI run of
8e28ba66, on the session's server with audit records of earlier tests: the waiting read's stream info answered
after 10 s, 503 ``queue_unavailable``, the proxy's queue and not the gate)."""

from __future__ import annotations

import asyncio

import httpx

from gamead_core.api.app import create_app
from gamead_core.config import GameadSettings
from gamead_core.embedded import EmbeddedNats
from tests.nats_filter import PublishFilter
from tests.support import until_ready


def test_audit_reads_past_the_bound_are_list_busy_and_watchers_have_their_own(nats_server: EmbeddedNats) -> None:
    """Figure before: all 4 answered 200 (no bound); now of 3 operators' reads one runs, one waits, one is 503
    ``list_busy`` naming ``audit.scans``, and a watcher's read is not refused by them."""
    proxy = PublishFilter(("127.0.0.1", nats_server.port)).start()
    settings = GameadSettings(ratelimit={"enabled": False}, audit={"scans": 1, "watch_scans": 1},
                              nats={"request_timeout": 10.0})

    async def scenario() -> list[httpx.Response]:
        app = create_app(settings, proxy.url)
        async with app.router.lifespan_context(app), httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://api", timeout=60) as client:
            await until_ready(client)
            proxy.hold("$JS.API.STREAM.INFO", 1.0)
            try:
                asks = [client.get("/v1/audit", params={"actor": f"ops{i}"}) for i in range(3)]
                asks.append(client.get("/v1/audit", params={"actor": "screen"},
                                       headers={"Cache-Control": "max-age=1"}))
                return list(await asyncio.gather(*asks))
            finally:
                proxy.pass_all()

    try:
        *operators, watcher = asyncio.run(scenario())
    finally:
        proxy.stop()
    codes = sorted(r.status_code for r in operators)
    assert codes == [200, 200, 503], [r.text for r in operators]
    (busy,) = [r.json()["error"] for r in operators if r.status_code == 503]
    assert busy["code"] == "list_busy" and "audit.scans" in busy["message"], busy
    assert watcher.status_code == 200, watcher.text
