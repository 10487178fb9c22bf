"""Watching must not hurt acting (attack37 F1). 24 ``gamead top --readonly`` on one API node with an 87-entry DLQ each
read the newest DLQ page with a consumer of its own, in the operator's ``dlq.scans`` slots: ``gamead dlq replay --all
--dry-run`` exited 1 after 8.8 s (503 ``list_busy``) and ``gamead dlq list --limit 3`` took 18 s to show 2 rows. Now a
dashboard's read (``Cache-Control: max-age=1``, as ``gamead top`` sends) runs in capacity of its own
(``dlq.watch_scans``), identical ones share one scan, and one may be given an answer up to a second old."""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx

from gamead_cli.tui.source import DLQ_PAGE, WATCHING
from tests.integration.dlq_lane import Lane, lane, made_up_entry  # noqa: F401 - lane is a fixture
from tests.support import wait_for

VIEWERS, ENTRIES = 24, 87  #: the finding's figure


def _scans(http: httpx.Client) -> int:
    """DLQ reads the API ran for answers of their own (``gamead_shared_reads_total{read="dlq",answer="read"}``)."""
    found = re.search(r'^gamead_shared_reads_total\{answer="read",read="dlq"\} (\S+)$|'
                      r'^gamead_shared_reads_total\{read="dlq",answer="read"\} (\S+)$', http.get("/metrics").text, re.M)
    return int(float(next(g for g in found.groups() if g))) if found else 0


def test_24_dashboards_reading_the_dlq_never_refuse_an_operators_dry_run_and_share_their_scans(lane: Lane) -> None:
    """Before: the operator's dry run (and ``dlq list``) met 503 ``list_busy`` behind the viewers' scans. Now every
    dry run counts all 87 entries, ``dlq list --limit 3`` shows 3 rows of 87, and the viewers' answers (200 each,
    every one with its ``ageSeconds``) came from far fewer scans than answers."""
    for at in range(0, ENTRIES, 50):
        entries = [made_up_entry(f"Dead {i}") for i in range(at, min(at + 50, ENTRIES))]
        assert lane.run_job("/v1/dlq/import", {"entries": entries})["counts"]["imported"] == len(entries)
    stop, lock, seen = threading.Event(), threading.Lock(), []

    def viewer() -> None:  # a dashboard re-reading its DLQ pane as fast as the API answers
        with httpx.Client(base_url=lane.url, timeout=30) as http:
            while not stop.is_set():
                got = http.get("/v1/dlq", params={"limit": DLQ_PAGE, "newest": "true"}, headers=WATCHING)
                with lock:
                    seen.append((got.status_code, got.json()))

    scans_before = _scans(lane.http)
    with ThreadPoolExecutor(VIEWERS) as pool:
        viewers = [pool.submit(viewer) for _ in range(VIEWERS)]
        try:
            wait_for(lambda: len(seen) >= 4 * VIEWERS, timeout=60, what="every viewer reading")
            for _ in range(3):
                dry = lane.http.post("/v1/dlq/replay", json={"all": True, "dryRun": True})
                assert dry.status_code == 200, dry.text
                assert (dry.json()["matched"], dry.json()["complete"]) == (ENTRIES, True), dry.text
                listed = lane.http.get("/v1/dlq", params={"limit": 3})
                assert listed.status_code == 200, listed.text
                page = listed.json()
                assert (page["count"], page["total"], page["complete"], page["ageSeconds"]) == (3, ENTRIES, True, 0)
        finally:
            stop.set()
        for done in viewers:
            done.result()
    scans = _scans(lane.http) - scans_before
    with lock:
        answers = list(seen)
    assert {status for status, _ in answers} == {200}, {s for s, _ in answers}
    assert all(body["inDlq"] == ENTRIES and 0 <= body["ageSeconds"] <= 1 for _, body in answers)
    assert any(body["ageSeconds"] > 0 for _, body in answers)  # some were given a recent answer
    # the operator's 3 lists are scans of their own; the viewers' answers shared a few
    assert 0 < scans <= len(answers) // 10, (scans, len(answers))


def test_a_viewers_token_reads_in_the_watchers_capacity_and_is_refused_before_an_operator(lane: Lane) -> None:
    """A viewer's token sending no ``Cache-Control`` (a script of its own) is a watcher too. The figure, scaled down:
    ``dlq.scans`` 1 and ``dlq.watch_scans`` 1, 16 viewers each re-reading a page of its own filter (nothing to
    share). Before: their scans held the operator's one slot and its dry run met 503 ``list_busy``. Now the
    operator's 3 dry runs count all 60 entries and only viewers are refused, naming ``dlq.watch_scans``."""
    entries = [made_up_entry(f"Dead {i}") for i in range(60)]
    assert lane.run_job("/v1/dlq/import", {"entries": entries})["counts"]["imported"] == 60
    tokens = '[{"name": "op", "token": "w37-operator-token", "role": "operator"},' \
             ' {"name": "wall", "token": "w37-viewer-token", "role": "viewer"}]'
    _, url = lane.api(GAMEAD_AUTH__TOKENS=tokens, GAMEAD_DLQ__SCANS="1", GAMEAD_DLQ__WATCH_SCANS="1")
    stop, lock, seen = threading.Event(), threading.Lock(), []

    def viewer(n: int) -> None:
        with httpx.Client(base_url=url, timeout=30, headers={"Authorization": "Bearer w37-viewer-token"}) as http:
            while not stop.is_set():
                got = http.get("/v1/dlq", params={"errorClass": f"Nope{n}", "newest": "true"})
                with lock:
                    seen.append((got.status_code, got.text))

    with ThreadPoolExecutor(16) as pool, \
            httpx.Client(base_url=url, timeout=30, headers={"Authorization": "Bearer w37-operator-token"}) as op:
        viewers = [pool.submit(viewer, n) for n in range(16)]
        try:
            wait_for(lambda: len(seen) >= 64, timeout=60, what="every viewer reading")
            for _ in range(3):
                dry = op.post("/v1/dlq/replay", json={"all": True, "dryRun": True})
                assert dry.status_code == 200, dry.text
                assert (dry.json()["matched"], dry.json()["complete"]) == (60, True), dry.text
        finally:
            stop.set()
        for done in viewers:
            done.result()
    with lock:
        refused = [text for status, text in seen if status == 503]
    assert {status for status, _ in seen} <= {200, 503}
    assert refused and all("list_busy" in t and "dlq.watch_scans" in t for t in refused), refused[:1]
