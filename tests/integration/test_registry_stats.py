"""The service registry and ``/v1/stats`` on a real NATS with real API and worker processes, plus the pure
decisions behind them (stuck, percentile merging, restart-proof rates)."""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import nats
import pytest

from gamead_core.config import RegistrySettings
from gamead_core.embedded import EmbeddedNats, free_port
from gamead_core.registry import (
    NodeInfo,
    Percentiles,
    Registry,
    api_node_info,
    is_stuck,
    node_state,
    percentiles,
    run_heartbeat,
)
from gamead_core.stats import MonotonicTotal, aging_horizon, merge_percentiles, step_rates, window_rate
from tests.support import Proc, ad, clean_env, gamead_argv, start_worker, wait_for, wait_terminal

TTL = 3.0
ENV = {
    "GAMEAD_REGISTRY__TTL": str(TTL),
    "GAMEAD_REGISTRY__HEARTBEAT_INTERVAL": "1",
    "GAMEAD_RATELIMIT__ENABLED": "false",
}


# --- a stack of this module's own: NATS + one API (ttl 3 s), workers started per test ----------------------


class Stack:
    def __init__(self, root: Any) -> None:
        self.root = root
        self.nats = EmbeddedNats(root / "nats").start()
        port = free_port()
        self.api = Proc("api", gamead_argv("serve", "--port", str(port)),
                        clean_env(GAMEAD_NATS__URL=self.nats.url, **ENV), root / "api.log").start()
        self.url = f"http://127.0.0.1:{port}"
        self.http = httpx.Client(base_url=self.url, timeout=10)
        wait_for(self._observing, timeout=30, what="API up and in its own registry")

    def _observing(self) -> bool:
        if not self.api.alive():
            raise AssertionError(f"API exited:\n{self.api.output()[-3000:]}")
        try:
            return any(n["pid"] == self.api.pid for n in self.http.get("/v1/workers").json()["items"])
        except (httpx.HTTPError, KeyError, ValueError):
            return False

    def worker(self, worker_id: str, concurrency: int = 2) -> Proc:
        return start_worker(self.nats.url, self.root, worker_id=worker_id, concurrency=concurrency, **ENV)

    def nodes(self) -> dict[str, dict[str, Any]]:
        return {n["id"]: n for n in self.http.get("/v1/workers").json()["items"]}

    def stats(self, **params: Any) -> dict[str, Any]:
        resp = self.http.get("/v1/stats", params=params)
        assert resp.status_code == 200, resp.text
        return resp.json()  # type: ignore[no-any-return]

    def close(self) -> None:
        self.http.close()
        self.api.stop()
        self.nats.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = Stack(tmp_path_factory.mktemp("registry"))
    yield s
    s.close()


# --- registry over the real bucket --------------------------------------------------------------------------


def test_registry_put_list_delete_and_clean_shutdown(stack: Stack) -> None:
    async def scenario() -> None:
        nc = await nats.connect(stack.nats.url)
        try:
            registry = Registry(nc, nc.jetstream(), RegistrySettings(ttl=TTL))
            node_id = f"probe/{uuid.uuid4().hex[:6]}"  # '/' is not a valid key character: it must be mapped
            await registry.put(api_node_info(node_id, started=time.time()))
            assert node_id in [n.id for n in await registry.list()]
            await registry.delete(node_id)
            assert node_id not in [n.id for n in await registry.list()]

            stop = asyncio.Event()
            beat = asyncio.create_task(
                run_heartbeat(registry, lambda: api_node_info("beater", started=time.time()), 0.2, stop))
            for _ in range(100):
                if "beater" in [n.id for n in await registry.list()]:
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("heartbeat never appeared")
            stop.set()
            await beat
            # a clean stop deletes the entry at once, long before the ttl would
            assert "beater" not in [n.id for n in await registry.list()]
        finally:
            await nc.close()

    asyncio.run(scenario())


def test_heartbeat_never_raises_when_nats_is_gone(stack: Stack, tmp_path: Any) -> None:
    async def scenario() -> None:
        server = EmbeddedNats(tmp_path / "short-lived").start()
        nc = await nats.connect(server.url, max_reconnect_attempts=1, reconnect_time_wait=0.1)
        registry = Registry(nc, nc.jetstream(timeout=0.3), RegistrySettings(ttl=TTL), timeout=0.3)
        server.stop()
        stop = asyncio.Event()
        beat = asyncio.create_task(
            run_heartbeat(registry, lambda: api_node_info("orphan", started=time.time()), 0.1, stop))
        await asyncio.sleep(0.5)
        assert not beat.done()  # still trying, not crashed
        stop.set()
        await asyncio.wait_for(beat, 5)  # ends cleanly although the final delete fails too
        await nc.close()

    asyncio.run(scenario())


# --- heartbeats of real processes ---------------------------------------------------------------------------


def test_a_worker_heartbeats_its_figures_and_a_sigkilled_one_disappears_within_ttl(
    stack: Stack, procs: list[Proc]
) -> None:
    worker_id = f"hb-{uuid.uuid4().hex[:6]}"
    worker = stack.worker(worker_id, concurrency=3)
    procs.append(worker)
    node = wait_for(lambda: stack.nodes().get(worker_id), timeout=20, what="the worker's heartbeat")
    assert node["role"] == "worker" and node["pid"] == worker.pid and node["concurrency"] == 3
    assert node["version"] and node["host"] and node["state"] in ("idle", "ok")

    ids = [stack.http.post("/ads", json=ad(f"Heartbeat {i}", priority=1 + i % 5)).json()["id"] for i in range(6)]
    for ad_id in ids:
        assert wait_terminal(stack.http, ad_id)["status"] == "completed"
    node = wait_for(lambda: (n := stack.nodes().get(worker_id)) and n["processed"] >= 6 and n,
                    timeout=5, what="processed count in the heartbeat")
    assert node["processingMs"]["count"] >= 6 and node["processingMs"]["p95"] is not None
    assert node["queueWaitMs"]["p50"] is not None and node["lastProgressAt"]
    stats = wait_for(lambda: (s := stack.stats()) and s["latency"]["processingMs"]["count"] >= 6 and s,
                     timeout=5, what="latency in /v1/stats")
    assert stats["nodes"]["workers"] >= 1 and stats["rates"]["completedPerSec"] > 0

    worker.kill()
    killed = time.monotonic()
    wait_for(lambda: worker_id not in stack.nodes(), timeout=TTL + 1 + 1 + 2, what="the killed worker to expire")
    print(f"SIGKILLed worker left /v1/workers after {time.monotonic() - killed:.1f}s (ttl {TTL:g}s)")


# --- /v1/stats ---------------------------------------------------------------------------------------------


def waiting(stats: dict[str, Any]) -> dict[int, int]:
    return {lv["priority"]: lv["waiting"] for lv in stats["queue"]["levels"]}


def test_stats_count_what_was_submitted_per_level(stack: Stack) -> None:
    # No worker runs here: every submitted ad waits at its level.
    before = stack.stats()
    sent = {1: 3, 2: 1, 4: 2, 5: 4}
    for level, count in sent.items():
        for i in range(count):
            assert stack.http.post("/ads", json=ad(f"Count {level}.{i}", priority=level)).status_code == 202
    expected = {lvl: waiting(before)[lvl] + sent.get(lvl, 0) for lvl in range(1, 6)}
    stats = wait_for(lambda: (s := stack.stats()) and waiting(s) == expected and s["rates"]["submittedPerSec"]
                     and s, timeout=5, what=f"waiting counts {expected}")

    queue = stats["queue"]
    assert queue["waiting"] == sum(expected.values())
    assert queue["inFlight"] == 0
    for lv in queue["levels"]:
        assert (lv["oldestAgeSeconds"] is None) == (expected[lv["priority"]] == 0)
        assert lv["agingHorizonSeconds"] == aging_horizon(lv["priority"], queue["agingStepSeconds"])
    assert stats["rates"]["submittedPerSec"] > 0 and stats["rates"]["failedPerSec"] == 0
    assert stats["dlq"]["size"] == 0
    nats_info = stats["nats"]
    assert nats_info["connected"] and nats_info["version"] and nats_info["server"]
    assert nats_info["storage"]["streams"] >= 3
    assert stats["nodes"]["api"] == 1
    auto = stats["autoscaler"]  # this node's last view of the autoscaler: current and desired, and why
    assert auto is None or {"current", "desired", "reason"} <= set(auto)
    assert isinstance(stats["cache"], dict)  # cache, Redis and rate-limit counters of this node
    history = stats["history"]
    assert history["points"] == len(history["t"]) == len(history["waiting"]["5"]) > 0
    assert history["waiting"]["5"][-1] == expected[5]
    assert len(stack.stats(history=10)["history"]["t"]) <= 10


def test_stats_answer_from_memory_fast(stack: Stack) -> None:
    """The figure is reported, not asserted (timings are not tests here); the answers must be right."""
    with httpx.Client(base_url=stack.url, timeout=10) as client:
        client.get("/v1/stats")  # warm the connection
        timings: dict[str, list[float]] = {"full": [], "tui": []}
        for params, key in (({}, "full"), ({"history": 300}, "tui")):
            for _ in range(100):
                started = time.perf_counter()
                resp = client.get("/v1/stats", params=params)
                timings[key].append((time.perf_counter() - started) * 1000)
                assert resp.status_code == 200 and len(resp.json()["queue"]["levels"]) == 5
    for key, values in timings.items():
        p95 = statistics.quantiles(values, n=20)[-1]
        print(f"/v1/stats ({key} history) over 100 calls: p50 {statistics.median(values):.2f} ms, "
              f"p95 {p95:.2f} ms, max {max(values):.2f} ms")


# --- pure decisions ----------------------------------------------------------------------------------------

T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)


def node(**kw: Any) -> NodeInfo:
    base: dict[str, Any] = dict(id="w", role="worker", host="h", pid=1, version="0", started_at=T0,
                                heartbeat_at=T0, concurrency=4)
    return NodeInfo(**{**base, **kw})


def test_stuck_means_in_flight_without_progress_past_the_task_timeout() -> None:
    busy = node(in_flight=2, last_progress_at=T0)
    assert not is_stuck(busy, T0 + timedelta(seconds=60), task_timeout=60)
    assert is_stuck(busy, T0 + timedelta(seconds=61), task_timeout=60)
    assert not is_stuck(node(in_flight=0, last_progress_at=T0), T0 + timedelta(hours=1), 60)  # idle, not stuck
    assert is_stuck(node(in_flight=1), T0 + timedelta(seconds=61), 60)  # never progressed: since start
    assert not is_stuck(node(role="api", in_flight=5), T0 + timedelta(hours=1), 60)


def test_node_state_prefers_draining_then_stuck_then_idle() -> None:
    late = T0 + timedelta(seconds=120)
    assert node_state(node(in_flight=1, last_progress_at=T0, state="draining"), late, 60) == "draining"
    assert node_state(node(in_flight=1, last_progress_at=T0), late, 60) == "stuck"
    assert node_state(node(in_flight=1, last_progress_at=T0, task_timeout=300), late, 60) == "ok"  # its own
    assert node_state(node(in_flight=0), late, 60) == "idle"
    assert node_state(node(role="api"), late, 60) == "ok"


def test_percentiles_are_nearest_rank() -> None:
    p = percentiles(range(1, 101))
    assert (p.p50, p.p95, p.p99, p.count) == (50, 95, 99, 100)
    assert percentiles([]) == Percentiles()


def test_merged_percentiles_are_exact_for_one_worker_and_weighted_for_many() -> None:
    one = Percentiles(p50=10, p95=40, p99=90, count=200)
    assert merge_percentiles([one]) == one
    slow = Percentiles(p50=100, p95=400, p99=900, count=200)
    merged = merge_percentiles([one, slow, Percentiles()])
    assert merged.count == 400 and 10 <= merged.p50 <= 100 and merged.p99 == 900
    assert merge_percentiles([Percentiles(p50=1, p95=2, p99=3, count=1), slow]).p50 == 100  # weight counts


def test_totals_survive_worker_restarts_and_departures() -> None:
    total = MonotonicTotal()
    assert total.update({"a": (100, False)}, now=0) == 0  # history from before we watched: not counted
    assert total.update({"a": (110, False), "b": (5, True)}, now=1) == 15  # b started while we watched
    assert total.update({"a": (3, False), "b": (5, True)}, now=2) == 18  # a restarted: 3 new, never negative
    assert total.update({"b": (9, True)}, now=3) == 22  # a left: no change from its absence


def test_rates_over_the_window_never_go_negative() -> None:
    points = [(0.0, 0), (1.0, 10), (2.0, None), (3.0, 30)]
    assert window_rate(points, now=3.0, window=60) == 10.0
    assert window_rate(points, now=3.0, window=1.5) is None  # one known point only
    assert window_rate([(0.0, 5), (1.0, 2)], now=1.0) == 0  # a total that went down counts as no progress
    assert step_rates(points) == [None, 10.0, None, None]


def test_aging_horizon_is_the_age_at_which_an_ad_reaches_the_top() -> None:
    assert [aging_horizon(lvl, 10) for lvl in (1, 2, 3, 4, 5)] == [10, 10, 20, 30, 40]
