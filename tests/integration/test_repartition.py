"""A stray process never repartitions a running queue (review findings 1, 2, 5), on one nats-server.

The reviewer's repro: a stack with ``queue.partitions: 3`` (empty queue), then a stray ``gamead worker`` with
the default 1 on the same NATS. It must exit 5 with one line naming both values and the fix, and leave every work
stream, its limits and its metadata as they were; a submitted ad then completes. The same for a stray
``gamead serve`` and a stray ``gamead up`` (exit 5, the API's message once). ``queue.repartition: true`` is
refused while an ad is queued, and on the drained queue makes the change.

Each test stands alone (``pytest -k <any one of them>`` passes): the module's stack is a nats-server and a
3-partition API, and nothing else; every test starts the workers it needs and stops them (the ``procs``
fixture), drains what it submits, and the test that changes the partitions does it on a server of its own.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest

from gamead_core import names
from gamead_core.embedded import EmbeddedNats
from gamead_core.queue.partitions import partition_of
from tests.support import (
    Proc,
    ad,
    clean_env,
    run_gamead,
    start_api,
    start_worker,
    up_stack,
    wait_for,
    wait_terminal,
    work_streams,
)

P3 = {"GAMEAD_QUEUE__PARTITIONS": "3", "GAMEAD_QUEUE__ACK_WAIT": "3", "GAMEAD_QUEUE__IDLE_POLL": "0.1",
      "GAMEAD_NATS__CONNECT_TIMEOUT": "5"}
#: the API's topology watch would recreate a deleted consumer within 5 s: here it must stay missing a while
SLOW_WATCH = {"GAMEAD_API__TOPOLOGY_CHECK_INTERVAL": "3600"}
STREAMS = ["GAMEAD_ADS", "GAMEAD_ADS_1", "GAMEAD_ADS_2"]


@pytest.fixture(scope="module")
def p3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One nats-server, an API with three partitions (no worker: each test starts what it needs, and stops
    it). No test changes the partitions of this server or leaves an ad on it."""
    root = tmp_path_factory.mktemp("repartition")
    server = EmbeddedNats(root / "nats").start()
    api, url = start_api(server.url, root, **P3, **SLOW_WATCH)
    try:
        with httpx.Client(base_url=url, timeout=30) as http:
            yield {"nats": server, "url": url, "http": http, "logs": root}
    finally:
        api.stop(timeout=10)
        server.stop()


def _gamead(nats_url: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """One ``gamead`` command to its end (a refused start ends at once; 60 s bound)."""
    return run_gamead(*args, env=clean_env(GAMEAD_NATS__URL=nats_url, **env), timeout=60)


def _red_lines(run: subprocess.CompletedProcess[str]) -> list[str]:
    """The console's lines on stderr (the process's own JSON log lines aside)."""
    return [line for line in run.stderr.splitlines() if line.strip() and not line.startswith("{")]


def test_a_stray_one_partition_worker_or_api_is_refused_and_touches_nothing(p3: dict[str, Any],
                                                                           procs: list[Proc]) -> None:
    """The reviewer's finding 1: streams, limits and metadata untouched; then a submitted ad completes."""
    url = p3["nats"].url
    before = work_streams(url)
    assert sorted(before) == STREAMS and all(s["messages"] == 0 for s in before.values())
    assert {s["config"]["metadata"][names.PARTITIONS_METADATA] for s in before.values()} == {"3"}
    for args in (("worker", "--id", "stray"), ("serve", "--port", "0")):
        run = _gamead(url, *args)  # the default queue.partitions: 1
        lines = _red_lines(run)
        assert run.returncode == 5, (args, run.returncode, run.stderr[-2000:])
        assert len(lines) == 1 and lines[0].count("error:") == 1, lines
        assert "queue.partitions is 1" in lines[0] and "queue.partitions 3" in lines[0]
        assert "set queue.partitions back to 3" in lines[0] and "queue.repartition: true" in lines[0]
        assert "Traceback" not in run.stderr + run.stdout
        assert work_streams(url) == before  # no stream deleted, no limit or metadata rewritten
    http = p3["http"]
    ids = [http.post("/ads", json=ad(f"After the stray {i}", 3)).json()["id"] for i in range(6)]
    assert http.get("/readyz").status_code == 200
    procs.append(start_worker(url, p3["logs"], worker_id="p3-w1", ready=True, **P3))
    for ad_id in ids:
        assert wait_terminal(http, ad_id, timeout=30)["status"] == "completed"


def _delete_consumer(url: str, stream: str, consumer: str) -> None:
    async def run() -> None:
        nc = await nats.connect(url)
        try:
            await nc.jetstream(timeout=5).delete_consumer(stream, consumer)
        finally:
            await nc.close()

    asyncio.run(run())


def test_a_missing_consumer_in_one_partition_does_not_block_the_levels_other_partitions(
        p3: dict[str, Any], procs: list[Proc]) -> None:
    """Level 3's consumer of partition 1 deleted under a running worker: level 3's ads in partitions 0 and 2 are
    still pulled and completed; once a worker start recreates it, partition 1's complete too. Its own worker:
    it failed when run alone, on the worker an earlier test had left running."""
    url, http = p3["nats"].url, p3["http"]
    worker = start_worker(url, p3["logs"], worker_id="p3-w2", ready=True, **P3)
    procs.append(worker)
    _delete_consumer(url, "GAMEAD_ADS_1", names.level_consumer(3, 1))
    ids: list[str] = []
    while not ({0, 2} <= {partition_of(i, 3) for i in ids} and 1 in {partition_of(i, 3) for i in ids}):
        assert len(ids) < 60, "ad ids never covered the three partitions"
        ids.append(http.post("/ads", json=ad(f"Level three {len(ids)}", 3)).json()["id"])
    readable = [i for i in ids if partition_of(i, 3) != 1]
    stuck = [i for i in ids if partition_of(i, 3) == 1]
    for ad_id in readable:
        assert wait_terminal(http, ad_id, timeout=30)["status"] == "completed"
    assert all(http.get(f"/ads/{i}").json()["status"] == "queued" for i in stuck)
    # said when the worker next reads the level's heads: ads arriving at its long polls read none, so that can be
    # up to queue.idle_wait (5 s) after the others completed (a fresh clone's run asserted it at once and failed)
    wait_for(lambda: "level 3 of partition 1 cannot be read" in worker.output(), timeout=30,
             what="the worker saying level 3 of partition 1 cannot be read")
    worker.stop(timeout=10)
    procs.append(start_worker(url, p3["logs"], worker_id="p3-w3", ready=True, **P3))  # recreates it
    for ad_id in stuck:
        assert wait_terminal(http, ad_id, timeout=30)["status"] == "completed"


def test_a_stray_gamead_up_exits_5_with_the_apis_message_once(p3: dict[str, Any], tmp_path: Path) -> None:
    """The reviewer's finding 5: ``gamead up`` ends with the API's refusal, whole, "error:" once, exit 5."""
    before = work_streams(p3["nats"].url)
    up = up_stack(tmp_path, "--workers", "0", GAMEAD_NATS__URL=p3["nats"].url)
    run = run_gamead(*up.argv[3:], env=up.env, timeout=90, cwd=tmp_path)
    lines = [line for line in _red_lines(run) if line.startswith("error:")]  # up's progress lines aside
    assert run.returncode == 5, (run.returncode, run.stdout[-2000:], run.stderr[-2000:])
    assert len(lines) == 1 and (run.stdout + run.stderr).count("error:") == 1, run.stderr
    assert lines[0].startswith("error: queue.partitions is 1 but the work streams")
    assert "(GAMEAD_QUEUE__REPARTITION=true; README: Partitions)" in lines[0] and "api.log" in lines[0]
    assert work_streams(p3["nats"].url) == before


def test_repartition_is_refused_while_an_ad_waits_and_made_on_the_drained_queue(
        fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path) -> None:
    """On a server of its own (it changes the partitions): a 3-partition API and no worker, so an ad waits."""
    url = fresh_nats().url
    p3_api, p3_url = start_api(url, tmp_path, **P3, **SLOW_WATCH)
    procs.append(p3_api)
    http = httpx.Client(base_url=p3_url, timeout=30)
    held = http.post("/ads", json=ad("Waiting", 2)).json()["id"]
    before = work_streams(url)
    assert sum(s["messages"] for s in before.values()) == 1
    run = _gamead(url, "worker", "--id", "early", GAMEAD_QUEUE__REPARTITION="true")
    lines = _red_lines(run)
    assert run.returncode == 5 and len(lines) == 1 and "holding 1 ad(s)" in lines[0], run.stderr[-2000:]
    assert work_streams(url) == before  # the held ad, every stream and its config as they were

    # the README's procedure: a 3-partition worker drains the queue, every node stops, one start with
    # queue.repartition: true and the new setting makes the change
    worker = start_worker(url, tmp_path, worker_id="p3-w4", ready=True, **P3)
    procs.append(worker)
    assert wait_terminal(http, held, timeout=30)["status"] == "completed"
    http.close()
    worker.stop(timeout=10)
    p3_api.stop(timeout=10)
    wait_for(lambda: all(s["messages"] == 0 for s in work_streams(url).values()), what="the drained queue")
    one = start_worker(url, tmp_path, worker_id="p1-w1", ready=True, GAMEAD_QUEUE__REPARTITION="true",
                       GAMEAD_QUEUE__ACK_WAIT="3")
    procs.append(one)
    after = work_streams(url)
    assert sorted(after) == ["GAMEAD_ADS"]
    assert after["GAMEAD_ADS"]["config"]["metadata"][names.PARTITIONS_METADATA] == "1"
    assert after["GAMEAD_ADS"]["config"]["max_msgs"] == 1_000_000  # the whole queue.max_msgs again, not a third
    assert "deleted the empty (sealed) work stream GAMEAD_ADS_2" in one.output()
    api, api_url = start_api(url, tmp_path)  # 1 partition now: an API with the default setting is served
    procs.append(api)
    with httpx.Client(base_url=api_url, timeout=30) as client:
        ad_id = client.post("/ads", json=ad("After the change", 3)).json()["id"]
        assert wait_terminal(client, ad_id, timeout=30)["status"] == "completed"
