"""A repartition start is refused while a live node runs on the old setting (attack42b F1), on one nats-server.

The finding: with the queue idle and 3 APIs and 3 workers heartbeating, one start of ``gamead serve`` with
``queue.partitions`` 4 and ``queue.repartition: true`` repartitioned the queue; within 20 s every old API answered each
submit 503 ``topology_changed`` and every old worker drained and exited 5. Now the start reads the registry first
(:mod:`gamead_core.queue.repartition_guard`): a live node on another setting refuses it, exit 5, one line naming the
node, nothing sealed or deleted; a killed node's entry, once expired, and a live node on the new setting do not.
Without the fix (``settle_partitions`` not reading the registry): the first start (the worker) repartitions the queue
with the 3-partition API alive and runs on (no exit within 60 s: the test fails there); with it, it passes.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import nats

from gamead_core import names
from gamead_core.config import RegistrySettings
from gamead_core.registry import NodeInfo, Registry, api_node_info, heartbeating
from tests.integration.test_nats_stall import until
from tests.support import Proc, clean_env, run_gamead, start_api, start_worker, work_streams

#: the old node's registry: entries expire 2 s after the last beat (the bucket is made by the first node)
SHORT_TTL = {"GAMEAD_REGISTRY__TTL": "2", "GAMEAD_REGISTRY__HEARTBEAT_INTERVAL": "0.5"}
P3 = {"GAMEAD_QUEUE__PARTITIONS": "3", "GAMEAD_API__TOPOLOGY_CHECK_INTERVAL": "3600", **SHORT_TTL}
P1 = {"GAMEAD_QUEUE__PARTITIONS": "1", "GAMEAD_QUEUE__REPARTITION": "true", "GAMEAD_NATS__CONNECT_TIMEOUT": "5"}


def _gamead(nats_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """One repartition start (``P1``) to its end (a refused start ends at once; 60 s bound)."""
    return run_gamead(*args, env=clean_env(GAMEAD_NATS__URL=nats_url, **P1), timeout=60)


def _red_lines(run: subprocess.CompletedProcess[str]) -> list[str]:
    """The console's lines on stderr (the process's own JSON log lines aside)."""
    return [line for line in run.stderr.splitlines() if line.strip() and not line.startswith("{")]


_NEWCOMER_STARTED = time.time() - 60  #: one process: its start time the same in every beat


def _newcomer() -> NodeInfo:
    """A node already on the new setting (1), on another host: it never blocks the change."""
    return api_node_info("api-on-the-new-setting", started=_NEWCOMER_STARTED, partitions=1).model_copy(
        update={"host": "another-host", "pid": 4242})


def test_a_live_node_on_the_old_setting_refuses_the_repartition_an_expired_one_does_not(
        fresh_nats: Any, procs: list[Proc], tmp_path: Path) -> None:
    """A live 3-partition API: a worker and a ``gamead serve`` started with 1 and ``queue.repartition`` each exit 5
    with one line naming it (id, ``partitions 3``), the three work streams as they were. The API killed (no clean
    stop: its entry stays until it expires, ``registry.ttl`` 2 s), the same start goes through: one stream, made with
    1. A node on the new setting beats throughout and is never named nor in the way."""
    url = fresh_nats().url
    old, _ = start_api(url, tmp_path, **P3)
    procs.append(old)

    async def scenario() -> None:
        nc = await nats.connect(url)
        try:
            registry = Registry(nc, nc.jetstream(timeout=5), RegistrySettings(ttl=2, heartbeat_interval=0.5))
            async with heartbeating(registry, _newcomer, 0.3):
                old_id = next(n.id for n in await registry.list() if n.partitions == 3)
                before = await asyncio.to_thread(work_streams, url)
                assert sorted(before) == ["GAMEAD_ADS", "GAMEAD_ADS_1", "GAMEAD_ADS_2"]
                for args in (("worker", "--id", "p1-first"), ("serve", "--port", "0")):
                    run = await asyncio.to_thread(_gamead, url, *args)
                    lines = _red_lines(run)
                    assert run.returncode == 5, (args, run.returncode, run.stderr[-3000:])
                    assert len(lines) == 1 and lines[0].count("error:") == 1, lines
                    assert f"{old_id} (api on " in lines[0] and "partitions 3, heartbeat " in lines[0], lines
                    assert "1 live node(s)" in lines[0] and "api-on-the-new-setting" not in lines[0], lines
                    assert "Traceback" not in run.stderr + run.stdout
                    assert await asyncio.to_thread(work_streams, url) == before  # nothing sealed, deleted, rewritten

                old.kill()  # no clean stop: its entry stays until registry.ttl after its last beat
                await until(lambda: _gone(registry, old_id), timeout=20, what="the killed API's entry to expire")
                new = await asyncio.to_thread(start_worker, url, tmp_path, worker_id="p1-w1", ready=True, **P1)
                procs.append(new)
                assert "api-on-the-new-setting" in {n.id for n in await registry.list()}  # live through the start
            after = await asyncio.to_thread(work_streams, url)
            assert sorted(after) == ["GAMEAD_ADS"], new.output()[-3000:]
            assert after["GAMEAD_ADS"]["config"]["metadata"][names.PARTITIONS_METADATA] == "1"
        finally:
            await nc.close()

    asyncio.run(scenario())


async def _gone(registry: Registry, node_id: str) -> bool:
    return node_id not in {n.id for n in await registry.list()}



def test_an_entry_of_a_node_stopped_moments_before_is_waited_out_not_refused(
        fresh_nats: Any, procs: list[Proc], tmp_path: Path) -> None:
    """The fresh clone of 99496397: the README's procedure (stop every node, then one start with the new setting)
    was refused for an API stopped 2.7 s before, its last heartbeat still listed (within ``registry.ttl``). Here a
    3-partition API is killed (its entry left to expire) and the start follows at once: it waits for the entry to
    expire, saying so, and goes through. Without the wait: exit 5 naming the killed API."""
    url = fresh_nats().url
    old, _ = start_api(url, tmp_path, **P3)
    old.kill()  # the moment before the procedure's start: its entry is listed for up to registry.ttl (2 s here)
    new = start_worker(url, tmp_path, worker_id="p1-first", ready=True, **P1, **SHORT_TTL)
    procs.append(new)
    assert "waiting up to" in new.output() and "refused" not in new.output(), new.output()[-3000:]
    assert sorted(work_streams(url)) == ["GAMEAD_ADS"], new.output()[-3000:]


SKEWED = str(Path(__file__).resolve().parents[1] / "skewed_gamead.py")
AHEAD = 60.0  #: the repartition start's host clock, seconds ahead of nats-server's (more than its registry.ttl, 10 s)


def test_a_start_whose_clock_is_ahead_still_sees_the_live_old_node(
        fresh_nats: Any, procs: list[Proc], tmp_path: Path) -> None:
    """review43 F1: the guard aged each entry by this process's clock, which before its first sample (none yet at a
    start's topology check: :mod:`gamead_core.clock`) is the host's wall clock. A start on a host 60 s ahead read the
    live 3-partition API's heartbeat (0.5 s old) as 60 s old, past ``registry.ttl``, found no live node and
    repartitioned the queue under it (the harm of attack42b F1). Now an entry is aged against the newest beat listed
    when this clock reads later than it. Without the fix: the skewed worker ran on with one work stream (no exit
    within 60 s: TimeoutExpired); with it, exit 5 naming the API, the three streams as they were."""
    url = fresh_nats().url
    old, _ = start_api(url, tmp_path, **P3)
    procs.append(old)
    before = work_streams(url)
    assert sorted(before) == ["GAMEAD_ADS", "GAMEAD_ADS_1", "GAMEAD_ADS_2"]
    try:
        run = subprocess.run([sys.executable, SKEWED, str(AHEAD), "worker", "--id", "p1-ahead"], capture_output=True,
                             text=True, stdin=subprocess.DEVNULL, timeout=60, env=clean_env(GAMEAD_NATS__URL=url, **P1))
    except subprocess.TimeoutExpired:  # (the process is killed by subprocess.run)
        raise AssertionError(f"the start ran on; work streams now {sorted(work_streams(url))}") from None
    lines = _red_lines(run)
    assert run.returncode == 5, (run.returncode, run.stderr[-3000:])
    assert len(lines) == 1 and "1 live node(s)" in lines[0] and "(api on " in lines[0], lines
    assert work_streams(url) == before  # nothing sealed, deleted or rewritten
