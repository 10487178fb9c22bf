"""A worker's per-ad bookkeeping made cheaper writes what it wrote before (issue 14.2, session 34): the held-ads
announcement joins each held delivery's JSON made when it changed (the same bytes as serialising them all at
each start step, ``held_json``'s way: ~70 held at a backlog; readers validate the same ``HeldAd`` list), and a
completed ad's Prometheus histograms get the bucket found once (the same series as prometheus-client's own
``observe``). Pure."""

from __future__ import annotations

import random

import orjson
from prometheus_client import CollectorRegistry, Histogram

from gamead_core.models import utc_iso
from gamead_core.telemetry import metrics
from gamead_core.telemetry.histogram import BUCKETS
from gamead_core.worker import announce
from gamead_core.worker.announce import announcement
from gamead_core.registry import HeldAd
from gamead_core.worker.held import HeldAds, held_json


def test_the_announcements_held_ads_are_the_same_bytes_through_every_change() -> None:
    held = HeldAds()
    rnd = random.Random(34)  # fixed: the same 3,000 changes every run
    for step in range(3_000):
        key = ("GAMEAD_ADS", rnd.randint(1, 70))
        action = rnd.random()
        if action < 0.4:
            held.hold(key, f"01jd{key[1]:022d}", f"{key[1]}.{step}", f"$JS.ACK.GAMEAD_ADS.level-3.1.{key[1]}.{step}",
                      started=rnd.random() < 0.5)
        elif action < 0.6:
            held.mark_started(key)
        elif action < 0.8:
            held.unmark(key)
        else:
            held.pop(key)
        assert held.wire_json() == b"[%s]" % b",".join(map(held_json, held.wire()))
        assert [HeldAd.model_validate(h) for h in orjson.loads(held.wire_json())] == held.listing()
    head = b'{"id":"w-1","role":"worker"'
    since = {3: 1764849000.5}
    assert announcement(head, held.wire_json(), 4, "2026-12-04T10:30:00Z", since) == announcement(
        head, held.wire(), 4, "2026-12-04T10:30:00Z", since)
    assert HeldAds().wire_json() == b"[]"


def test_a_completed_ads_histograms_are_prometheus_clients_own() -> None:
    theirs = Histogram("hot_path_check", "the same buckets", ["priority"], buckets=BUCKETS,
                       registry=CollectorRegistry()).labels("2")
    ours = metrics.WorkerMetrics(True)
    before = [b.get() for b in metrics._PROCESSING[2]._buckets], metrics._PROCESSING[2]._sum.get()
    values = [0.0, *BUCKETS, 0.0003, 0.7, 601.0, 1e9, -1.0]  # every bound exactly (le), between, past the last
    for value in values:
        ours.completed(2, value, value, 1000.0)
        theirs.observe(max(0.0, value))
    after = [b.get() for b in metrics._PROCESSING[2]._buckets], metrics._PROCESSING[2]._sum.get()
    assert [a - b for a, b in zip(after[0], before[0])] == [b.get() for b in theirs._buckets]
    assert after[1] - before[1] == theirs._sum.get()
    assert ours.processing.counts(1000.0) == [int(b.get()) for b in theirs._buckets]  # the heartbeat's window too


def test_the_announcements_unstarted_times_are_utc_isos_own_and_their_memo_stays_bounded() -> None:
    """``unstartedSince`` written through the memo (session 35: ~10 of an announcement's ~20 µs were five levels'
    times formatted again at every start step) is ``utc_iso``'s text for every time, also after the memo was
    emptied; the memo never holds more than ``ISO_MEMO_SIZE`` times. Figure: 1,000 times, a few repeated."""
    rnd = random.Random(35)
    times = [rnd.choice([1764849000.5, 1764849001.0, 0.0]) if rnd.random() < 0.3 else rnd.uniform(0, 2e9)
             for _ in range(1_000)]
    for at in times:
        assert announce.since_iso(at) == utc_iso(at)
        assert len(announce._ISO) <= announce.ISO_MEMO_SIZE  # noqa: SLF001
    since = {level: times[level] for level in range(1, 6)}
    body = orjson.loads(announcement(b'{"id":"w-1"', b"[]", 4, "2026-12-04T10:30:00Z", since))
    assert body["unstartedSince"] == {str(level): utc_iso(at) for level, at in since.items()}

