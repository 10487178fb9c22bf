"""outage38: while the API knows its store is failing, a submit is refused at once (503 ``storage_failing``, certain:
no ``adId``, ``Retry-After``), but a trial, instead of each waiting its publish timeout and coming back "may be
queued". Real nats-server (frozen by SIGSTOP, by its PID: writes go unanswered, as on a full disk) and a real API."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from gamead_core.embedded import EmbeddedNats
from tests.support import Proc, ad, frozen, start_api, wait_for

AT_ONCE = 20


def _answers(url: str, count: int, title: str) -> list[httpx.Response]:
    """``count`` single ``POST /ads`` sent at once."""
    def one(i: int) -> httpx.Response:
        with httpx.Client(base_url=url, timeout=30) as client:
            return client.post("/ads", json=ad(f"{title} {i}"))
    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(one, range(count)))


def _maybe_queued(error: dict[str, Any]) -> bool:
    return isinstance(error.get("details"), dict) and "adId" in error["details"]


def test_submits_while_the_store_is_known_failing_are_refused_at_once_but_a_trial(
        fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path) -> None:
    """NATS frozen; once ``/readyz`` says storage failing, 20 single submits at once and a batch of 10: at most one
    ad of each tries the store (the trial, "may be queued"), every other is 503 ``storage_failing`` without ``adId``
    and with ``Retry-After`` (figures before the fix: 20 of 20 singles and 10 of 10 of the batch's ads
    ``queue_unavailable`` with ``adId``, "may be queued", each after the 2 s publish timeout; 0 refused at once).
    Once NATS runs again, submits are taken again: 20 of 20 answered 202."""
    server = fresh_nats()
    # a 5 s publish timeout: a trial outlasts the burst of submits, even spread out by a loaded machine
    api, url = start_api(server.url, tmp_path, GAMEAD_API__PUBLISH_TIMEOUT="5", GAMEAD_RATELIMIT__ENABLED="false")
    procs.append(api)
    assert server.proc is not None
    with httpx.Client(base_url=url, timeout=30) as client:
        with frozen(server.proc.pid):
            first = client.post("/ads", json=ad("Frozen 0"))  # its write goes unanswered: storage known failing
            assert first.status_code == 503, first.text
            wait_for(lambda: client.get("/readyz").json()["checks"]["storage"].startswith("failing"), timeout=20,
                     what="/readyz to say storage failing")
            singles = _answers(url, AT_ONCE, "Frozen")
            batch = client.post("/ads/batch", json={"ads": [ad(f"Frozen batch {i}") for i in range(10)]})
        codes = [(r.status_code, r.json()["error"]["code"]) for r in singles]
        refused = [r for r in singles if r.json()["error"]["code"] == "storage_failing"]
        assert len(refused) >= AT_ONCE - 2, codes  # one trial at a time, each 5 s: at most two here
        assert all(r.status_code == 503 and r.headers.get("Retry-After") and not _maybe_queued(r.json()["error"])
                   for r in refused), codes
        if batch.status_code == 503:  # refused whole: nothing was sent
            assert batch.json()["error"]["code"] == "storage_failing" and batch.headers.get("Retry-After"), batch.text
        else:  # the trial: its first ad tried, the others refused in their places
            errors = [r["error"] for r in batch.json()["results"]]
            assert sum(_maybe_queued(e) for e in errors) <= 1, errors
            assert sum(e["code"] == "storage_failing" and not _maybe_queued(e) for e in errors) >= 9, errors
        wait_for(lambda: client.post("/ads", json=ad("Thawed")).status_code == 202, timeout=30,
                 what="a submit taken again once NATS runs")
        again = _answers(url, AT_ONCE, "Thawed")
        assert [r.status_code for r in again] == [202] * AT_ONCE, [r.text for r in again if r.status_code != 202]
