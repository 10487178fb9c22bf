"""Nodes whose wall clocks disagree (attack33a): every time gamead stamps or compares is nats-server's, as each
node samples it (gamead_core.clock), so a worker whose host clock is 5 min behind is judged by its real heartbeats
and stamps its records in the order they happened. The skew comes from tests/skewed_gamead.py (the process's
time.time off by N seconds, its monotonic clock true), not from the machine's clock."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from gamead_core.embedded import EmbeddedNats
from tests.support import Proc, ad, clean_env, start_api, wait_for, wait_terminal, wait_worker_ready

SKEWED = str(Path(__file__).resolve().parents[1] / "skewed_gamead.py")
ENV = {"GAMEAD_REGISTRY__TTL": "4", "GAMEAD_REGISTRY__HEARTBEAT_INTERVAL": "1", "GAMEAD_RATELIMIT__ENABLED": "false",
       "GAMEAD_AUTOSCALER__BACKEND": "none"}


def skewed_worker(nats_url: str, root: Path, worker_id: str, skew: float) -> Proc:
    """``gamead worker`` whose host clock reads ``skew`` seconds off (negative: behind)."""
    proc = Proc(worker_id, [sys.executable, SKEWED, str(skew), "worker", "--id", worker_id, "--concurrency", "2"],
                clean_env(GAMEAD_NATS__URL=nats_url, **ENV), root / f"worker-{worker_id}.log").start()
    wait_worker_ready(proc)
    return proc


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[EmbeddedNats, str]]:
    server = EmbeddedNats(tmp_path / "nats").start()
    api, url = start_api(server.url, tmp_path, **ENV)
    try:
        yield server, url
    finally:
        api.stop()
        server.stop()


def _at(record: dict[str, Any], field: str) -> datetime:
    return datetime.fromisoformat(str(record[field]).replace("Z", "+00:00"))


def test_a_worker_five_minutes_behind_is_seen_alive_and_stamps_in_order(stack: tuple[EmbeddedNats, str],
                                                                         tmp_path: Path) -> None:
    server, url = stack
    worker = skewed_worker(server.url, tmp_path, "wbehind", -300.0)
    try:
        with httpx.Client(base_url=url, timeout=10) as http:
            def listed() -> dict[str, Any] | None:
                nodes = {n["id"]: n for n in http.get("/v1/workers").json()["items"]}
                node = nodes.get("wbehind")
                return node if node and node.get("heartbeatAgeSeconds") is not None else None

            node = wait_for(listed, timeout=30, what="the skewed worker listed with a heartbeat")
            # 5 s more of beats: before the fix its heartbeat read 300 s old and it was `stuck` from the start
            wait_for(lambda: (listed() or {}).get("heartbeatAgeSeconds", 99) < 3.0, timeout=10,
                     what="a fresh heartbeat")
            node = listed()
            assert node is not None and node["state"] not in ("stuck", "late", "gone"), node
            assert node["heartbeatAgeSeconds"] < 4.0, node  # registry.ttl; before: ~300
            ids = [http.post("/ads", json=ad(f"skew {i}", priority=2)).json()["id"] for i in range(3)]
            for ad_id in ids:
                record = wait_terminal(http, ad_id)
                assert record["status"] == "completed", record
                # before: startedAt/completedAt 5 min before submittedAt (the worker's own clock). Two nodes agree
                # within their samples' errors (half a heartbeat put's round trip: well under 1 s on a loaded run)
                waited = (_at(record, "startedAt") - _at(record, "submittedAt")).total_seconds()
                assert -1.0 < waited < 60, record
                assert _at(record, "startedAt") <= _at(record, "completedAt"), record
    finally:
        worker.stop()
