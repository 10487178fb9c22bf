"""What the operator's node views (``gamead workers``, ``top``, ``/v1/workers``, ``/v1/stats``) say of the
registry, on a real NATS: an API that has not read the registry yet (drill attack25d #11), a frozen worker (#4)."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import nats
import pytest
from fastapi import FastAPI

from gamead_cli import exitcodes
from gamead_core.api.routes_v1 import router
from gamead_core.config import GameadSettings
from gamead_core.embedded import EmbeddedNats
from gamead_core.registry import NodeInfo, Registry
from gamead_core.stats import QueueSampler
from tests.support import clean_env, run_gamead, wait_for


@pytest.fixture
def server(tmp_path: Path) -> Iterator[EmbeddedNats]:
    s = EmbeddedNats(tmp_path / "nats").start()
    yield s
    s.stop()


def worker_entry(node_id: str, *, age: float = 0.0, in_flight: int = 0, now: float | None = None,
                 started: float | None = None) -> NodeInfo:
    """A worker's registry entry whose last heartbeat was ``age`` seconds before ``now`` (epoch s, default the
    wall clock), of a process started at ``started`` (epoch s; default 100 s before ``now``: the beats of one
    process give the same, as a registry takes another start time for another process: registry.owner)."""
    now = time.time() if now is None else now
    return NodeInfo.model_validate({
        "id": node_id, "role": "worker", "host": "h", "pid": 4242, "version": "0", "concurrency": 2,
        "inFlight": in_flight, "startedAt": now - 100 if started is None else started, "heartbeatAt": now - age,
        "lastProgressAt": now - age})


async def answer(sampler: QueueSampler, path: str) -> dict[str, Any]:
    app = FastAPI()
    app.include_router(router)
    app.state.stats_sampler = sampler
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client:
        resp = await client.get(path)
    assert resp.status_code == 200, resp.text
    return resp.json()  # type: ignore[no-any-return]


async def fresh_api(nc: Any, registry_class: type[Registry]) -> tuple[GameadSettings, Any, Any, QueueSampler]:
    """An API node's sampler that has never sampled, over a registry (of ``registry_class``) where worker
    ``beating-w`` beats: (settings, registry, link, sampler)."""
    settings = GameadSettings()
    registry = registry_class(nc, nc.jetstream(), settings.registry)
    await registry.put(worker_entry("beating-w"))
    link = SimpleNamespace(nc=nc, js=nc.jetstream(), last_error=None)
    return settings, registry, link, QueueSampler(link, settings, node_id="fresh-api", registry=registry)


def test_an_api_that_has_not_sampled_yet_reads_the_registry_before_it_answers(server: EmbeddedNats) -> None:
    """#11: right after an API restart (``/readyz`` 200) ``gamead workers`` printed "no live nodes (none sent a
    heartbeat within registry.ttl)" and exited 0 while two workers beat: the API had the registry but had not
    read it yet. Now the first answer reads it: the beating worker is listed, and counted in ``/v1/stats``."""
    async def scenario() -> None:
        nc = await nats.connect(server.url)
        try:
            settings, registry, link, sampler = await fresh_api(nc, Registry)
            workers = await answer(sampler, "/v1/workers")
            assert [n["id"] for n in workers["items"]] == ["beating-w"], workers
            assert workers["error"] is None and workers["readAt"], workers
            stats = await answer(QueueSampler(link, settings, node_id="fresh-api", registry=registry), "/v1/stats")
            assert stats["nodes"]["workers"] == 1 and stats["nodes"]["readAt"], stats["nodes"]
        finally:
            await nc.close()

    asyncio.run(scenario())


def test_an_api_that_could_not_read_the_registry_says_so_not_that_no_node_beat(server: EmbeddedNats) -> None:
    """#11: with no registry yet (NATS not reached since the start) the answer says the registry was not read
    (``readAt`` null, ``error`` why) rather than an empty, read registry."""
    async def scenario() -> None:
        nc = await nats.connect(server.url)
        try:
            link = SimpleNamespace(nc=nc, js=nc.jetstream(), last_error=None)
            sampler = QueueSampler(link, GameadSettings(), node_id="fresh-api")  # no registry yet
            workers = await answer(sampler, "/v1/workers")
            assert workers["items"] == [] and workers["readAt"] is None, workers
            assert "not read yet" in workers["error"], workers
        finally:
            await nc.close()

    asyncio.run(scenario())


class CountedRegistry(Registry):
    """The real registry, counting its ``list()`` reads."""

    lists = 0

    async def list(self) -> list[NodeInfo]:  # type: ignore[override]
        self.lists += 1
        return await super().list()


async def answers(sampler: QueueSampler, paths: list[str]) -> list[dict[str, Any]]:
    app = FastAPI()
    app.include_router(router)
    app.state.stats_sampler = sampler
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client:
        resps = await asyncio.gather(*(client.get(p) for p in paths))
    assert all(r.status_code == 200 for r in resps), [r.text for r in resps]
    return [r.json() for r in resps]


def test_requests_to_a_fresh_api_share_one_registry_read(server: EmbeddedNats) -> None:
    """Review stats2 #3: until its first registry read every ``/v1/stats`` and ``/v1/workers`` request of a fresh
    API ran its own ``registry.list()`` (20 dashboards: 20 reads piling up on NATS), and each failed one appended
    the same error again. Now concurrent requests wait on one read, and a failure is said once."""
    async def scenario() -> None:
        nc = await nats.connect(server.url)
        try:
            settings, registry, link, sampler = await fresh_api(nc, CountedRegistry)
            got = await answers(sampler, ["/v1/workers", "/v1/stats"] * 10)
            assert registry.lists == 1
            assert all([n["id"] for n in g["items"]] == ["beating-w"] for g in got[::2]), got[0]
            assert all(g["nodes"]["workers"] == 1 for g in got[1::2]), got[1]["nodes"]
        finally:
            await nc.close()
        broken = CountedRegistry(nc, nc.jetstream(), settings.registry)  # its connection closed: every read fails
        sampler = QueueSampler(link, settings, node_id="fresh-api", registry=broken)
        got = await answers(sampler, ["/v1/workers"] * 20)
        assert broken.lists == 1
        await answers(sampler, ["/v1/workers"])  # tried again: still said once
        assert broken.lists == 2
        assert len([e for e in sampler.errors if e.startswith("registry")]) == 1, sampler.errors
        assert got[0]["readAt"] is None and got[0]["error"], got[0]

    asyncio.run(scenario())


@pytest.fixture
def unread_api() -> Iterator[str]:
    """The real ``/v1/workers`` route (uvicorn, in a thread) of an API node that has not reached NATS yet: its
    sampler has no registry."""
    import socket
    import threading

    import uvicorn

    app = FastAPI()
    app.include_router(router)
    app.state.stats_sampler = QueueSampler(SimpleNamespace(nc=None, js=None, last_error=None), GameadSettings(),
                                           node_id="fresh-api")
    # bound here, on a port the kernel gives (before, a free_port() pick uvicorn bound later: another process
    # could take it in between, and the wait below failed after 20 s)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    # log_config None: uvicorn's own would reconfigure this process's logging for the tests after this one
    served = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="off"))
    thread = threading.Thread(target=served.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    wait_for(lambda: served.started, timeout=20, what="uvicorn to listen")
    yield f"http://127.0.0.1:{port}"
    served.should_exit = True
    thread.join(10)
    listener.close()


def test_gamead_workers_says_the_registry_was_not_read_in_one_red_line_exit_3(unread_api: str,
                                                                            tmp_path: Path) -> None:
    """#11: "no live nodes (none sent a heartbeat within registry.ttl)" + "registry unavailable", exit 0, from an
    API that had not read the registry. Now one red line saying so, exit 3 (NATS unreachable, the README's code),
    for people and for ``-o json`` alike; ``-o json`` still prints the API's body on stdout (``readAt`` null,
    ``error`` why), not an ``{"error": …}`` document in its place; ``top --once`` says it in place of the node
    counts."""
    for args in (("workers",), ("workers", "-o", "json")):
        result = run_gamead(*args, "--api", unread_api, env=clean_env(), cwd=tmp_path)
        assert result.returncode == exitcodes.UNREACHABLE, (args, result.stdout, result.stderr)
        assert "no live" not in result.stdout + result.stderr, result
        lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and "registry not read yet" in lines[0], result.stderr
    body = json.loads(result.stdout)  # the -o json run's stdout: one document, the body
    assert body["readAt"] is None and body["items"] == [] and "registry not read yet" in body["error"], body
    from rich.console import Console

    from gamead_cli.tui import view

    stats = httpx.get(f"{unread_api}/v1/stats").json()
    console = Console(width=160, record=True, color_system=None)
    console.print(view.snapshot_view(view.Snapshot(stats=stats, nodes=[]), unread_api))
    shown = console.export_text()
    assert "registry not read yet" in shown and "0 workers" not in shown and "no live nodes" not in shown, shown


# --- #4: a frozen worker is late, then gone; never ok/idle for the ttl, never silently dropped -----------------


class Clock:
    """The sampler's clock (epoch s): ``at`` while it is set, else the wall clock."""

    def __init__(self, at: float | None = None) -> None:
        self.at = at

    def __call__(self) -> float:
        return time.time() if self.at is None else self.at


def clocked_sampler(nc: Any) -> tuple[Registry, QueueSampler, Clock]:
    """An API's sampler over the registry (``registry.ttl`` 2 s, a beat every 0.5 s) whose clock is set to now:
    entries written with a heartbeat ``age`` s before ``clock.at`` read exactly that old."""
    settings = GameadSettings(registry={"ttl": 2.0, "heartbeat_interval": 0.5})
    registry = Registry(nc, nc.jetstream(), settings.registry)
    link = SimpleNamespace(nc=nc, js=nc.jetstream(), last_error=None)
    clock = Clock(time.time())
    return registry, QueueSampler(link, settings, node_id="api", registry=registry, sections=False,
                                  clock=clock), clock


async def scraped_workers(sampler: QueueSampler) -> dict[str, float]:
    """``gamead_workers`` of the API's ``/metrics`` (the real route, over ``sampler``): ``{state: value}``."""
    from prometheus_client.parser import text_string_to_metric_families

    from gamead_core.api.routes_metrics import router as metrics_router

    app = FastAPI()
    app.include_router(metrics_router)
    app.state.stats_sampler = sampler
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client:
        resp = await client.get("/metrics")
    assert resp.status_code == 200, resp.text
    return {s.labels["state"]: s.value for f in text_string_to_metric_families(resp.text) if f.name == "gamead_workers"
            for s in f.samples}


def test_a_silent_worker_is_late_then_gone_not_idle_then_absent(server: EmbeddedNats) -> None:
    """#4: a SIGSTOPped worker showed ``idle``/``ok`` for the whole ``registry.ttl``, then either ``stuck`` or, once
    its KV entry expired (max_age = ttl), nothing at all (``workers: 1, stuck: 0``) while it still held ads. Now a
    heartbeat older than 2.5 beats is ``late``, and an entry that expired is listed ``gone`` (counted in
    ``/v1/stats`` ``nodes.gone``); a node that left cleanly (its entry deleted) is not. The API's ``/metrics``
    says the same states (``gamead_workers{state="late"}``, then ``"gone"``), not the node's own ``ok``.

    The late read is at a set time (the sampler's clock), 1.5 s after the heartbeat written in the entry: no
    stall of a loaded machine between the put and the read can age it past the ttl (``stuck``)."""
    async def scenario() -> None:
        nc = await nats.connect(server.url)
        try:
            registry, sampler, clock = clocked_sampler(nc)  # the read's time, set: 1.5 s after frozen-w's last
            # beat (1.25 < 1.5 < 2, ttl)
            await registry.put(worker_entry("frozen-w", age=1.5, in_flight=2, now=clock.at))
            await registry.put(leaving := worker_entry("leaving-w", now=clock.at))
            await sampler.sample()
            nodes = {n["id"]: n for n in sampler.workers_payload()["items"]}
            assert nodes["frozen-w"]["state"] == "late", nodes["frozen-w"]  # 1.5 s > 2.5 × 0.5 s, not idle/ok
            assert sampler.stats()["nodes"]["late"] == 1
            metric = await scraped_workers(sampler)
            assert metric["late"] == 1 and metric["ok"] + metric["idle"] == 1, metric  # frozen-w, leaving-w
            clock.at = None  # the wall clock again: the entry expires for real
            # a clean stop as a node makes one, its note and its entry's delete mark: the mark alone tells a stop
            # for registry.ttl only, and at load 35 the read below came after it expired (load59A: leaving-w still
            # listed, held as lost with the bucket)
            await registry.stop(leaving)
            for _ in range(200):  # the entry expires ~2 s after its put (the bucket's max_age)
                if "frozen-w" not in [n.id for n in await registry.list()]:
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("the frozen worker's entry never expired")
            await sampler.sample()
            nodes = {n["id"]: n for n in sampler.workers_payload()["items"]}
            assert "leaving-w" not in nodes, nodes
            assert nodes["frozen-w"]["state"] == "gone" and nodes["frozen-w"]["heartbeatAgeSeconds"] >= 2, nodes
            counts = sampler.stats()["nodes"]
            assert counts["gone"] == 1 and counts["workers"] == 0, counts
            metric = await scraped_workers(sampler)
            assert metric["gone"] == 1 and sum(metric.values()) == 1, metric
        finally:
            await nc.close()

    asyncio.run(scenario())


class LateBeatRegistry(Registry):
    """The real registry; when :attr:`late` is set, that entry is put right after the next listing: a node's late
    beat landing between the API's listing (its entry expired) and its lookup of the vanished entry."""

    late: NodeInfo | None = None

    async def list(self) -> list[NodeInfo]:  # type: ignore[override]
        nodes = await super().list()
        if self.late is not None:
            late, self.late = self.late, None
            await self.put(late)
        return nodes


def test_a_worker_whose_late_beat_lands_between_the_listing_and_the_lookup_is_still_listed(
        server: EmbeddedNats) -> None:
    """flakes32: a worker beating late on a loaded machine (its entry expired, ``registry.ttl``) whose next beat
    landed between the API's registry listing and its lookup of the vanished entry was in neither list: not live
    (not in the listing), not ``gone`` (the lookup found an entry): ``/v1/workers`` dropped it for a read (a test's
    ``_workers(lane)["w1"]``: KeyError). Now the entry the lookup found is listed, live."""
    async def scenario() -> None:
        nc = await nats.connect(server.url)
        try:
            settings = GameadSettings(registry={"ttl": 2.0, "heartbeat_interval": 0.5})
            registry = LateBeatRegistry(nc, nc.jetstream(), settings.registry)
            link = SimpleNamespace(nc=nc, js=nc.jetstream(), last_error=None)
            sampler = QueueSampler(link, settings, node_id="api", registry=registry, sections=False)
            await registry.put(worker_entry("late-w"))
            await sampler.sample()
            assert [n["id"] for n in sampler.workers_payload()["items"]] == ["late-w"]
            for _ in range(200):  # the entry expires ~2 s after its put (the bucket's max_age)
                if "late-w" not in [n.id for n in await registry.list()]:
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("the late worker's entry never expired")
            registry.late = worker_entry("late-w")  # its late beat, right after the sample's listing
            await sampler.sample()
            nodes = {n["id"]: n for n in (await answer(sampler, "/v1/workers"))["items"]}
            assert "late-w" in nodes and nodes["late-w"]["state"] in ("ok", "idle"), nodes
            assert sampler.stats()["nodes"]["workers"] == 1, sampler.stats()["nodes"]
        finally:
            await nc.close()

    asyncio.run(scenario())


# --- #2, #9: what the nodes table says of a restarted worker's counters ------------------------------------------


@pytest.fixture
def api_on(server: EmbeddedNats, tmp_path: Path) -> Iterator[str]:
    """A real API process on this test's NATS."""
    from tests.support import start_api

    api, url = start_api(server.url, tmp_path)
    try:
        yield url
    finally:
        api.stop()


def workers_table(api_url: str, nats_url: str, tmp_path: Path, entry: NodeInfo) -> str:
    """``gamead workers`` (200 columns, no colour) once ``entry``'s node is listed; the entry is put again (its
    heartbeat fresh) before each try."""
    async def put() -> None:
        nc = await nats.connect(nats_url)
        try:
            fresh = entry.model_copy(update={"heartbeat_at": datetime.now(timezone.utc)})
            await Registry(nc, nc.jetstream(), GameadSettings().registry).put(fresh)
        finally:
            await nc.close()

    def shown() -> str | None:
        asyncio.run(put())
        result = run_gamead("workers", "--api", api_url, env=clean_env(COLUMNS="200", NO_COLOR="1"), cwd=tmp_path)
        return result.stdout if entry.id in result.stdout else None

    return " ".join(wait_for(shown, timeout=30, what=f"{entry.id} in gamead workers").split())


def test_a_restarted_worker_shows_when_its_process_started(api_on: str, server: EmbeddedNats, tmp_path: Path) -> None:
    """#2: ``gamead up`` restarts a worker under its id and its counters start again (444 → 18) with nothing saying
    so. The nodes table now has UP (the process's uptime, from ``startedAt``), and its legend says the counters
    are since that start."""
    entry = worker_entry("restarted-w").model_copy(update={"processed": 18, "failed": 1})  # started 100 s ago
    shown = workers_table(api_on, server.url, tmp_path, entry)
    row = shown.split(" restarted-w ", 1)[1].split()  # ROLE STATE UP …
    assert " UP " in shown and re.fullmatch(r"1m[45]\ds", row[2]), shown  # up 100 s (and the wait)
    assert "UP: time since the process started" in shown, shown


def test_the_completed_column_says_what_it_counts(api_on: str, server: EmbeddedNats, tmp_path: Path) -> None:
    """#9: the column PROCESSED was told as "ads analysed since the process started" but counts completions only
    (= ``gamead_ads_processed_total{outcome="completed"}``): failed attempts, analysed too, are in FAILED. It is
    COMPLETED now, and FAILED is told as failed attempts."""
    entry = worker_entry("counting-w").model_copy(update={"processed": 1153, "failed": 258})
    shown = workers_table(api_on, server.url, tmp_path, entry)
    row = shown.split(" counting-w ", 1)[1].split()  # ROLE STATE UP IN-FL COMPLETED FAILED …
    assert " COMPLETED FAILED " in shown and row[4:6] == ["1,153", "258"], shown
    assert "PROCESSED" not in shown and "analysed" not in shown, shown
    assert "COMPLETED: ads completed since the process started" in shown, shown
    assert "FAILED: failed analysis attempts (retried or dead-lettered)" in shown, shown
