"""What clients and probes see at the NATS boundary, on real servers: a full stream is 503 ``queue_full`` with
Retry-After (issue 9 item 10); a client never sees connection details (issue 11 item 4); ``/healthz`` fails once
NATS has been out of reach longer than ``api.nats_unhealthy_after`` and recovers with it (issue 9 item 7)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import httpx
import nats

from gamead_core import names
from gamead_core.embedded import EmbeddedNats
from tests.ports import ReservedPort
from tests.support import Proc, ad, assert_doctor_clean, start_api, wait_for


def stream_info(url: str):  # noqa: ANN201 - nats-py's StreamInfo
    async def run():  # noqa: ANN202
        nc = await nats.connect(url)
        try:
            return await nc.jetstream().stream_info(names.ADS_STREAM)
        finally:
            await nc.close()

    return asyncio.run(run())


def test_a_stream_at_max_msgs_answers_503_queue_full_with_retry_after(
    fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path
) -> None:
    server = fresh_nats()
    # a publish timeout longer than the client's: an error ack lost to a timeout would show as a ReadTimeout
    api, url = start_api(server.url, tmp_path, GAMEAD_QUEUE__MAX_MSGS="3",  # and max_bytes: test_topology.py
                         GAMEAD_API__PUBLISH_TIMEOUT="60")
    with httpx.Client(base_url=url, timeout=10) as client:
        codes = [client.post("/ads", json=ad(f"Ad {i}")).status_code for i in range(3)]
        assert codes == [202, 202, 202]
        full = client.post("/ads", json=ad("One too many"))
        assert full.status_code == 503
        assert full.json()["error"]["code"] == "queue_full"
        assert "maximum messages exceeded" in full.json()["error"]["message"]
        assert int(full.headers["retry-after"]) > 0
        # the batch route's pipelined publishes read the same error ack (nats-py's publish_async lost it)
        batch = client.post("/ads/batch", json={"ads": [ad("Batch 1"), ad("Batch 2")]})
        assert batch.status_code == 503 and batch.json()["error"]["code"] == "queue_full"
        assert "maximum messages exceeded" in batch.json()["error"]["message"]
    procs.append(api)
    assert stream_info(server.url).state.messages == 3, "a refused submit leaves nothing behind"
    assert_doctor_clean(url)


def test_clients_never_see_the_nats_url_and_healthz_follows_nats(
    procs: list[Proc], tmp_path: Path
) -> None:
    held = ReservedPort()  # nothing listens there yet (held: no other process can, until NATS comes)
    port = held.port
    secret = "S3cretPW"
    nats_url = f"nats://gamead:{secret}@127.0.0.1:{port}"
    api, url = start_api(nats_url, tmp_path, ready=False, GAMEAD_API__NATS_UNHEALTHY_AFTER="2")
    procs.append(api)
    with httpx.Client(base_url=url, timeout=10) as client:
        def answer(method: str, path: str, **kw: object) -> httpx.Response | None:
            try:
                return client.request(method, path, **kw)  # type: ignore[arg-type]
            except httpx.TransportError:
                return None

        submit = wait_for(lambda: answer("POST", "/ads", json=ad("While NATS is down")), timeout=30,
                          what="API listening")
        shown = [submit, client.get("/readyz"), client.get("/ads/01jbq2xk5v8m3n4p6r7s9t0w1y"), client.get("/v1/dlq")]
        assert [r.status_code for r in shown] == [503, 503, 503, 503]
        assert submit.json()["error"]["code"] == "queue_unavailable"
        for resp in shown:
            for leak in (secret, str(port), "127.0.0.1", "nats://", "gamead:"):
                assert leak not in resp.text, f"{resp.request.url.path} shows {leak!r}: {resp.text}"

        unhealthy = wait_for(lambda: (r := client.get("/healthz")).status_code == 503 and r, timeout=15,
                             what="/healthz failing after api.nats_unhealthy_after = 2 s")
        assert unhealthy.json()["error"]["code"] == "nats_unreachable"
        assert secret not in unhealthy.text and str(port) not in unhealthy.text

        server = EmbeddedNats(tmp_path / "nats", port=held.release()).start()  # NATS comes (back)
        try:
            wait_for(lambda: client.get("/healthz").status_code == 200, timeout=20, what="/healthz ok again")
            wait_for(lambda: client.post("/ads", json=ad("After")).status_code == 202, timeout=20, what="submits")
            # ready once the storage probe has written again (its first write after the reconnect)
            wait_for(lambda: client.get("/readyz").status_code == 200, timeout=20, what="/readyz ready again")
            assert_doctor_clean(url)
        finally:
            api.stop()
            server.stop()
    logged = api.output()
    assert secret not in logged
    assert f"nats://gamead:***@127.0.0.1:{port}" in logged
    assert any(json.loads(line).get("error_code") == "queue_unavailable"
               for line in logged.splitlines() if line.startswith("{"))
