"""Issue 14: the NATS messages one ad costs at steady state, counted by kind on a real stack (one API, one
worker, ads submitted one at a time, so each ad wakes the idle worker on its own — the dearest case).

The budget per ad (``benchmarks/README.md``, "Every NATS message of an ad"; ``bench_idle.py --breakdown``
counted 10.6 distinct messages per ad at 100 ads/s and 8.9 at 1,000 ads/s, 2 workers):

* the record: KV create (API) and the outcome write (worker), each acknowledged — 2 writes on ``$KV.gamead_ads``;
* the work message: publish (API) and its publish ack, and its delivery (routed to the pull request's inbox);
* one ``+ACK`` per ad, sent without a reply subject (no double ack), after the outcome write;
* about one pull request per ad: the long poll that delivered it, put back; no heads read to find it;
* about one held-ads announcement per ad (``$KV.gamead_registry``: the worker lists the ad as started before
  it runs unmarked, so a crash charges it; :mod:`gamead_core.worker.held`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx

from gamead_core import names
from gamead_core.embedded import EmbeddedNats
from tests.support import Proc, SubjectTap, ad, start_api, start_worker, wait_for, wait_terminal

ADS = 20
#: no periodic look at the heads and no heartbeat (the worker's nor the API's) during the count: what is counted is
#: what the ads cause, however long the count takes (with analyses of 600 ms, the API's default beats took the
#: registry's count to 26 of its budget of 22)
QUIET = {"GAMEAD_QUEUE__IDLE_WAIT": "120", "GAMEAD_REGISTRY__HEARTBEAT_INTERVAL": "60", "GAMEAD_REGISTRY__TTL": "120"}


def test_each_ad_costs_its_budget_of_nats_messages(
    fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path
) -> None:
    server = fresh_nats()
    api, url = start_api(server.url, tmp_path, **QUIET)  # the API heartbeats into the registry too
    procs.append(api)
    procs.append(start_worker(server.url, tmp_path, worker_id="budget", concurrency=2, ready=True, **QUIET))
    with httpx.Client(base_url=url, timeout=20) as http:
        taps = {
            "records": SubjectTap(server.url, names.kv_all(names.ADS_BUCKET)),
            "work": SubjectTap(server.url, f"{names.ADS_SUBJECT_PREFIX}.>"),
            "acks": SubjectTap(server.url, f"$JS.ACK.{names.ADS_STREAM}.>"),
            "pulls": SubjectTap(server.url, f"$JS.API.CONSUMER.MSG.NEXT.{names.ADS_STREAM}.>"),
            "registry": SubjectTap(server.url, names.kv_all(names.REGISTRY_BUCKET)),
        }
        try:
            # the warm-up's ack leaves after its record reads terminal: counted from once it is seen (a fresh
            # clone's run, taps opened after the warm-up read terminal, counted its ack: 21 acks for 20 ads)
            warm = http.post("/ads", json=ad("Warm-up")).json()["id"]
            wait_terminal(http, warm)
            wait_for(lambda: len(taps["acks"].messages) >= 1, timeout=20, what="the warm-up's ack")
            # each tap has a connection of its own: one may see a message after another tap saw a later one
            wait_for(lambda: taps["work"].count >= 1 and warm in _keys(taps["records"], b'"status":"completed"'),
                     timeout=20, what="the warm-up's publish and outcome on their taps")
            before = {kind: len(tap.messages) for kind, tap in taps.items()}
            records = []
            for i in range(ADS):  # one at a time: the worker is idle when each arrives
                ad_id = http.post("/ads", json=ad(f"Budget {i}", priority=1 + i % 5)).json()["id"]
                records.append(wait_terminal(http, ad_id))
            # the ack leaves once the completed record's write is acknowledged, so after the record reads terminal
            # (a fresh clone's run closed the taps in between once: 19 acks of 20)
            wait_for(lambda: len(taps["acks"].messages) >= before["acks"] + ADS, timeout=20, what="the last ad's ack")
            # the same at the end; and the writes are counted by ad, so no other ad's write can be counted (a full
            # run once counted 41 writes for the 20 ads, likely the warm-up's outcome seen after its ack)
            ids = [r["id"] for r in records]
            wait_for(lambda: set(ids) <= _keys(taps["records"], b'"status":"completed"'), timeout=20,
                     what="every ad's outcome write on the records tap")
        finally:
            for tap in taps.values():
                tap.close()
    assert {r["status"] for r in records} == {"completed"}
    count = {kind: len(tap.messages) - before[kind] for kind, tap in taps.items()}
    writes = Counter(_key(subject) for subject in taps["records"].subjects)
    assert [writes[i] for i in ids] == [2] * ADS, (count, writes)  # create + outcome: no read, no `processing` mark
    # the publish (its delivery goes to the long poll's inbox: a subscriber on the subject never sees it)
    assert count["work"] == ADS, count
    assert count["acks"] == ADS and set(taps["acks"].messages[before["acks"]:]) <= {b"", b"+ACK"}, count  # an ack: no nak, no +WPI
    assert count["pulls"] <= ADS + 5, count  # the long poll put back (5 levels: at most one each more)
    assert count["registry"] <= ADS + 2, count  # the held-ads announcement


def _keys(tap: SubjectTap, marker: bytes) -> set[str]:
    """The record keys (ad ids) of the writes ``tap`` saw whose body holds ``marker``."""
    return {_key(subject) for subject, body in zip(list(tap.subjects), list(tap.messages)) if marker in body}


def _key(subject: str) -> str:
    """A record write's key (its ad id): the last token of ``$KV.<bucket>.<key>``."""
    return subject.rsplit(".", 1)[-1]
