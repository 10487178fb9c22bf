"""``GET /ads`` scans the newest ``api.list_scan_limit`` *records*, not stream sequences (brief small12 item 1).

Each ad's record is written 2–3 times and the bucket keeps the last revision only, so its sequences are sparse:
a reviewer's bucket of 6,401 records spanned ~16,000 sequences and ``ads list --status dead`` said "no ads match
(of the newest api.list_scan_limit records)" while the one dead ad was there. Here on a real nats-server, with
records written three times each: the scan reads exactly the newest ``scan_limit`` records (all of them when the
bucket holds fewer), says how many it read (``scanned``) and whether that was all (``complete``), and the CLI
says "among the newest N records" only when the scan did stop short of the bucket.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import nats

from gamead_core.ad_ids import new_ad_id
from gamead_core.config import GameadSettings
from gamead_core.embedded import EmbeddedNats
from gamead_core.errors import StorageFailed
from gamead_core.models import AdRecord, AdStatus, AdSubmission, utcnow
from gamead_core.queue.topology import ensure_topology
from gamead_core.store.ads import AdStore
from tests.cluster import NatsCluster, fresh_cluster
from tests.support import SAMPLE_AD, clean_env, run_gamead, start_api

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


async def _write_thrice(store: AdStore, count: int, status: AdStatus = AdStatus.QUEUED) -> list[str]:
    """``count`` ads, one after another, each record written three times (queued, processing, ``status``), as
    a worker does; their ids, oldest first."""
    ids = []
    for _ in range(count):
        rec = AdRecord(id=new_ad_id(), status=AdStatus.QUEUED, priority=3, submitted_at=utcnow(),
                       ad=AdSubmission.model_validate(SAMPLE_AD))
        rev = await store.create(rec)
        rev = await store.update(rec.model_copy(update={"status": AdStatus.PROCESSING}), rev)
        await store.update(rec.model_copy(update={"status": status}), rev)
        ids.append(rec.id)
    return ids


def _run(server: EmbeddedNats, body: Callable[[AdStore], object], *, topology: bool = True) -> object:
    async def run() -> object:
        nc = await nats.connect(server.url)
        try:
            js = nc.jetstream()
            if topology:
                await ensure_topology(js, GameadSettings())
            return await body(await AdStore.open(nc, js))  # type: ignore[misc]
        finally:
            await nc.close()

    return asyncio.run(run())


def test_the_scan_covers_the_newest_records_not_the_newest_sequences(
    fresh_nats: Callable[[], EmbeddedNats],
) -> None:
    """One dead ad, then 60 ads written three times each: 61 records over 183 sequences. A scan of 100 finds
    the dead ad and reads all 61 (complete); a scan of 40 reads exactly the 40 newest records, not complete."""
    server = fresh_nats()

    async def body(store: AdStore) -> None:
        dead = (await _write_thrice(store, 1, AdStatus.DEAD))[0]
        ids = await _write_thrice(store, 60)
        page = await store.page(status=AdStatus.DEAD, scan_limit=100)
        assert [r.id for r in page.records] == [dead], "the dead ad is among the newest 100 records"
        assert (page.scanned, page.complete, page.total) == (61, True, 1)
        window = await store.page(limit=500, scan_limit=40)
        assert (window.scanned, window.complete, window.total) == (40, False, 40)
        assert [r.id for r in window.records] == ids[-40:][::-1], "the 40 written last, newest first"
        paged, cursor = [], None  # paging over the window still gives each once
        while True:
            part = await store.page(limit=15, scan_limit=40, before=cursor)
            paged += [r.id for r in part.records]
            if part.next_cursor is None:
                break
            cursor = part.next_cursor
        assert paged == ids[-40:][::-1]
        empty = await store.page(status=AdStatus.FAILED, scan_limit=40)
        assert (empty.records, empty.scanned, empty.complete) == ([], 40, False)

    _run(server, body)


def test_an_empty_bucket_is_a_complete_scan_of_nothing(fresh_nats: Callable[[], EmbeddedNats]) -> None:
    async def body(store: AdStore) -> None:
        page = await store.page(scan_limit=100)
        assert (page.records, page.scanned, page.complete, page.total) == ([], 0, True, 0)

    _run(fresh_nats(), body)


def _gamead(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_gamead(*args, env=clean_env(COLUMNS="200"), cwd=cwd, timeout=120)


def test_get_ads_and_ads_list_say_how_much_was_scanned(fresh_nats: Callable[[], EmbeddedNats],
                                                     tmp_path: Path) -> None:
    """The reviewer's repro, scaled down (``api.list_scan_limit`` 100): a dead ad then ads written three times
    each. With 61 records ``ads list --status dead`` shows it and GET /ads says ``scanned`` 61, ``complete``; an
    empty filter then says only "no ads match". With 121 records the scan reads 100 and says so: "among the
    newest 100 records (api.list_scan_limit)", in the table's count line too."""
    server = fresh_nats()
    api, url = start_api(server.url, tmp_path, GAMEAD_API__LIST_SCAN_LIMIT="100")
    try:
        dead = _run(server, lambda store: _write_thrice(store, 1, AdStatus.DEAD), topology=False)[0]  # type: ignore[index]
        _run(server, lambda store: _write_thrice(store, 60), topology=False)
        body = httpx.get(f"{url}/ads", params={"status": "dead"}, timeout=30).json()
        assert [i["id"] for i in body["items"]] == [dead]
        assert (body["scanned"], body["complete"]) == (61, True), body
        shown = _gamead("ads", "list", "--status", "dead", "--api", url, cwd=tmp_path)
        assert shown.returncode == 0 and dead in shown.stdout, shown.stdout + shown.stderr
        assert "among the newest" not in shown.stdout, shown.stdout
        none = _gamead("ads", "list", "--status", "failed", "--api", url, cwd=tmp_path)
        assert _ANSI.sub("", none.stdout).strip() == "no ads match --status failed", none.stdout

        _run(server, lambda store: _write_thrice(store, 60), topology=False)
        body = httpx.get(f"{url}/ads", params={"status": "dead"}, timeout=30).json()
        assert (body["items"], body["scanned"], body["complete"]) == ([], 100, False), body
        none = _gamead("ads", "list", "--status", "dead", "--api", url, cwd=tmp_path)
        said = " ".join(_ANSI.sub("", none.stdout).split())
        assert said == "no ads match --status dead among the newest 100 records (api.list_scan_limit)", said
        some = _gamead("ads", "list", "--limit", "3", "--api", url, cwd=tmp_path)
        assert "3 shown of 100 among the newest 100 records (api.list_scan_limit), newest first" in \
            " ".join(_ANSI.sub("", some.stdout).split()), some.stdout
        as_json = json.loads(_gamead("ads", "list", "--api", url, "-o", "json", cwd=tmp_path).stdout)
        assert (as_json["scanned"], as_json["complete"]) == (100, False)
    finally:
        api.stop(timeout=10)


async def _placed_topology(js: Any) -> None:
    """gamead's R3 topology on the test cluster, once its meta leader places it: right after an earlier test's
    streams were wiped (or a node restarted) the leader's view of the peers' free storage lags for a moment, and
    it refused "no suitable peers for placement, insufficient storage" (twice in full runs, never alone)."""
    deadline = time.monotonic() + 30
    while True:
        try:
            await ensure_topology(js, GameadSettings(queue={"replicas": 3}))
            return
        except StorageFailed:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


def test_the_window_is_found_on_an_r3_bucket_of_a_cluster(nats_cluster: NatsCluster) -> None:
    """The same on a three-node cluster, the bucket R3 (its probe consumers are R1, in memory): a scan of 10
    reads exactly the 10 ads written last."""
    cluster = fresh_cluster(nats_cluster)

    async def run() -> None:
        nc = await nats.connect(cluster.servers)
        try:
            js = nc.jetstream(timeout=5)
            await _placed_topology(js)
            store = await AdStore.open(nc, js)
            ids = await _write_thrice(store, 30)
            whole = await store.page(limit=500, scan_limit=100)
            assert (whole.scanned, whole.complete, [r.id for r in whole.records]) == (30, True, ids[::-1])
            window = await store.page(limit=500, scan_limit=10)
            assert (window.scanned, window.complete, [r.id for r in window.records]) == (10, False, ids[-10:][::-1])
        finally:
            await nc.close()

    asyncio.run(run())
