"""A records bucket recreated under a running API (deleted by hand or by a wipe, made again by the topology watch):
the API's cache went on answering the old bucket's ads (leftout60). Its scope (the bucket's creation time,
``gamead:ad:{scope}:{id}``) was read once when the node set up its queue link, and the in-process cache's keys had
none, so ``GET /ads/{id}`` answered 200 ``X-Cache: hit`` with a completed ad the store no longer held, for up to
``cache.ttl`` (300 s): the same lie attack59 ended between two stacks, within one. Now the scope follows the bucket
at each topology check (``api.topology_check_interval``; none while it is missing: the cache bypassed), in Redis and
in process alike: the API answers 404 as its store does. Real nats-server, worker and valkey-server."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import httpx
import nats
import pytest

from gamead_core import names
from gamead_core.embedded import EmbeddedNats
from tests.redis_fixtures import ValkeyProc
from tests.support import Proc, ad, start_api, start_worker, wait_for


@pytest.mark.parametrize("backend", ["redis", "memory"])
def test_a_recreated_records_bucket_is_never_answered_from_the_old_ones_cache(
        backend: str, fresh_nats: Callable[[], EmbeddedNats], valkey_server: ValkeyProc, procs: list[Proc],
        tmp_path: Path) -> None:
    server = fresh_nats()
    env = {"GAMEAD_API__TOPOLOGY_CHECK_INTERVAL": "0.5"}
    if backend == "redis":
        env["GAMEAD_REDIS__URL"] = valkey_server.url
    api, url = start_api(server.url, tmp_path, **env)
    procs.append(api)
    worker = start_worker(server.url, tmp_path)
    procs.append(worker)
    with httpx.Client(base_url=url, timeout=30) as http:
        ad_id = http.post("/ads", json=ad("Cached Then Gone")).json()["id"]
        wait_for(lambda: http.get(f"/ads/{ad_id}").json().get("status") == "completed", timeout=60,
                 what="the ad to complete")
        assert http.get(f"/ads/{ad_id}").headers["x-cache"] == "hit"
        worker.stop()  # nothing writes the bucket while it is gone

        async def delete_bucket() -> None:
            nc = await nats.connect(server.url)
            try:
                js = nc.jetstream()
                before = (await js.stream_info(names.ADS_BUCKET_STREAM)).created
                await js.delete_stream(names.ADS_BUCKET_STREAM)
                for _ in range(600):  # the API's topology watch makes it again (0.5 s)
                    try:
                        again = (await js.stream_info(names.ADS_BUCKET_STREAM)).created
                    except nats.js.errors.NotFoundError:
                        await asyncio.sleep(0.05)
                        continue
                    assert again != before
                    return
                raise AssertionError("the records bucket was not made again in 30 s")
            finally:
                await nc.close()

        asyncio.run(delete_bucket())
        assert http.get("/ads").json()["count"] == 0  # the store holds no ad now
        # before: 200 X-Cache: hit, 'completed', for cache.ttl (300 s); now 404 once the next check has run
        gone = wait_for(lambda: (r := http.get(f"/ads/{ad_id}")).status_code == 404 and r, timeout=30,
                        what="GET /ads/ID to answer as the store does (404), not from the old bucket's cache")
        assert gone.json()["error"]["code"] == "not_found", gone.text
        # the cache works on, in the new bucket's scope (not bypassed for good)
        procs.append(start_worker(server.url, tmp_path, worker_id="w2"))
        ad2 = http.post("/ads", json=ad("In The New Bucket")).json()["id"]
        wait_for(lambda: http.get(f"/ads/{ad2}").json().get("status") == "completed", timeout=60,
                 what="the new bucket's ad to complete")
        wait_for(lambda: http.get(f"/ads/{ad2}").headers["x-cache"] == "hit", timeout=30,
                 what="the new bucket's ad answered from the cache")
