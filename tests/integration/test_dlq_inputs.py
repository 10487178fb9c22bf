"""Every client input is checked at the boundary (issue 9 items 7, 8, 9), on a real API and nats-server: ids,
regexes and times that used to cut the API off NATS, freeze its event loop or answer 500.

One lane (nats-server, API, a worker that dead-letters every "Doomed …" ad at once) serves the whole module;
each test works on ads of its own.
"""

from __future__ import annotations

import asyncio
import copy
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import nats
import pytest
from typer.testing import CliRunner

from gamead_cli.main import app as cli
from gamead_core import names
from tests.integration.dlq_lane import DOOMED, Lane, broken_invariants, made_up_entry, shared_lane  # noqa: F401
from tests.support import assert_doctor_clean, wait_for

OTHER_ID = "01m87v538ce744cfgethvyb39n"


@pytest.fixture(scope="module")
def lane(shared_lane: Lane) -> Iterator[Lane]:  # noqa: F811 - the module's lane, with a doomed-ad worker
    shared_lane.worker(**DOOMED)
    yield shared_lane


def _healthy(lane: Lane, ad_id: str) -> None:
    """The API still reaches NATS: readiness, a real read and a real write all work; and nothing a client
    sent broke an invariant (gamead doctor)."""
    assert lane.http.get("/readyz").status_code == 200
    assert lane.http.get(f"/ads/{ad_id}").status_code == 200
    assert lane.http.get("/v1/dlq").status_code == 200
    assert lane.submit("Still Here") is not None
    assert_doctor_clean(lane.url)


def _dead_entry(lane: Lane, title: str = "Doomed Input") -> tuple[str, dict]:
    ad_id = lane.submit(title)
    lane.dead(ad_id)
    entry = lane.http.get(f"/v1/dlq/{ad_id}").json()
    entry.pop("seq", None)
    return ad_id, entry


def _jobs(lane: Lane, kind: str) -> int:
    return int(lane.http.get("/v1/jobs", params={"kind": kind, "limit": 1000}).json()["count"])


def test_malformed_ids_are_404_or_422_and_never_reach_nats(lane: Lane) -> None:
    """Issue 9.7: `GET /ads/<4,000 × a>` made nats-server close the API's connection ("maximum control line
    exceeded") and every route answered 503 from then on; `*`, `>`, `.` and a space answered 503;
    `GET /v1/dlq/*` returned another ad's entry."""
    ad_id, _ = _dead_entry(lane)
    for bad in ["a" * 4000, "*", ">", "%2E", " ", "gamead.ads.>", "..%2Fstats", OTHER_ID.upper()]:  # %2E: "."
        for path in (f"/ads/{bad}", f"/v1/dlq/{bad}"):
            resp = lane.http.get(path)
            assert resp.status_code == 404, (path[:60], resp.status_code, resp.text[:200])
            assert resp.json()["error"]["code"] == "not_found"
    assert lane.http.get(f"/v1/dlq/{ad_id}").json()["adId"] == ad_id
    for path, body in [("/v1/dlq/replay", {"ids": ["*"]}), ("/v1/dlq/purge", {"ids": [ad_id, "a" * 5000]}),
                       ("/v1/dlq/replay", {"ids": [">"], "dryRun": True})]:
        resp = lane.http.post(path, json=body)
        assert resp.status_code == 422 and resp.json()["error"]["code"] == "validation_failed", resp.text[:300]
        assert resp.json()["error"]["details"][0]["loc"].startswith("ids.")
    _healthy(lane, ad_id)


def test_jobs_routes_check_their_ids_and_answer_404_for_unknown_ones(lane: Lane) -> None:
    for bad in ("*", ">", "x" * 4000, "..%2Fstats", OTHER_ID.upper()):
        for path in (f"/v1/jobs/{bad}", f"/v1/jobs/{bad}/events"):
            resp = lane.http.get(path)
            assert resp.status_code == 404 and resp.json()["error"]["code"] == "not_found", (path[:60], resp.text)
        assert lane.http.post(f"/v1/jobs/{bad}/cancel").status_code == 404
    assert lane.http.get(f"/v1/jobs/{OTHER_ID}").status_code == 404
    bad_query = lane.http.get("/v1/jobs", params={"state": "nonsense"})
    assert bad_query.status_code == 422 and bad_query.json()["error"]["code"] == "validation_failed"
    assert lane.http.get("/readyz").status_code == 200


def test_an_import_is_validated_whole_before_anything_is_written(lane: Lane) -> None:
    """Issue 9.7: an import with a 5,000-char `adId` cut the API off NATS; one with `adId: "*"` was half
    written and then stopped every replay-all. Now: 422 naming the entry's index and field, nothing written."""
    good = made_up_entry("Imported Input")  # an ad this environment has never seen
    ad_id = good["adId"]
    imports = _jobs(lane, "import")
    for n, field, value in [(1, "adId", "a" * 5000), (2, "adId", "*"), (1, "id", ">"), (1, "priority", 99),
                            (2, "deadAt", "0001-01-01T00:00:00+01:00")]:
        bad = {**copy.deepcopy(good), field: value}
        resp = lane.http.post("/v1/dlq/import", json={"entries": [good] * n + [bad]})
        assert resp.status_code == 422, resp.text[:300]
        locs = [d["loc"] for d in resp.json()["error"]["details"]]
        assert any(loc.startswith(f"entries.{n}.") for loc in locs), locs
    twice = lane.http.post("/v1/dlq/import", json={"entries": [good, good]})
    assert twice.status_code == 422 and twice.json()["error"]["details"][0]["loc"] == "entries.1.adId"
    assert lane.http.get(f"/v1/dlq/{ad_id}").status_code == 404  # nothing was written
    assert _jobs(lane, "import") == imports
    done = lane.run_job("/v1/dlq/import", {"entries": [good]})
    assert done["state"] == "succeeded" and done["counts"]["imported"] == 1
    assert lane.http.get(f"/ads/{ad_id}").json()["status"] == "dead"  # the record is made from the entry
    assert lane.http.post("/v1/dlq/replay", json={"ids": [ad_id], "dryRun": True}).json()["matched"] == 1
    _healthy(lane, ad_id)


def test_an_import_never_replaces_an_entry_and_is_held_to_the_service_bounds(lane: Lane) -> None:
    """Reviewer V10, N2: each modified copy of a dead ad's entry answered `imported 1 of 1` and replaced it:
    `sourceSeq: -1`, a 10,000-character `errorClass`, `deadAt: 9999-12-31T23:59:59Z`, `workerId: "a.b.>"`. Now
    those are 422 at their field, and a valid but different copy is skipped (the entry here is kept)."""
    ad_id, entry = _dead_entry(lane, "Doomed Kept")
    for field, bad in [("sourceSeq", -1), ("errorClass", "E" * 10_000), ("deadAt", "9999-12-31T23:59:59Z"),
                       ("workerId", "a.b.>")]:
        resp = lane.http.post("/v1/dlq/import", json={"entries": [{**entry, field: bad}]})
        assert resp.status_code == 422 and resp.json()["error"]["code"] == "validation_failed", resp.text[:300]
        assert [d["loc"] for d in resp.json()["error"]["details"]] == [f"entries.0.{field}"]
    changed = {**entry, "errorClass": "ForgedError", "errorMessage": "rewritten by an import", "attempts": 99}
    done = lane.run_job("/v1/dlq/import", {"entries": [changed]})
    assert done["state"] == "succeeded" and done["counts"]["imported"] == 0, done
    assert done["counts"]["skipped"] == 1 and any("kept" in r for r in done["skippedReasons"]), done
    kept = lane.http.get(f"/v1/dlq/{ad_id}").json()
    kept.pop("seq", None)
    assert kept == entry  # what this environment wrote, untouched
    same = lane.run_job("/v1/dlq/import", {"entries": [entry]})  # the identical entry: a duplicate, as before
    assert same["counts"]["imported"] == 0 and any("identical" in r for r in same["skippedReasons"]), same
    assert lane.http.get(f"/ads/{ad_id}").json()["status"] == "dead"
    _healthy(lane, ad_id)


def test_an_entry_names_its_ad_once_and_an_older_export_with_id_still_imports(lane: Lane, tmp_path: Path) -> None:
    """Issue 12.1: `DlqEntry.id` duplicated `adId`. An entry now says `adId` only; an export of an older gamead
    (with `id` beside `adId`) imports when the two agree, and is refused with 422 at `entries.N.id` when not."""
    older = made_up_entry("Older Export")
    ad_id = older["adId"]
    older["id"] = ad_id
    other = made_up_entry("Other Id")
    wrong = {**other, "id": made_up_entry("Third")["adId"]}
    refused = lane.http.post("/v1/dlq/import", json={"entries": [older, wrong]})
    assert refused.status_code == 422, refused.text[:300]
    assert [d["loc"] for d in refused.json()["error"]["details"]] == ["entries.1.id"]
    assert lane.http.get(f"/v1/dlq/{ad_id}").status_code == 404  # nothing was written
    done = lane.run_job("/v1/dlq/import", {"entries": [older]})
    assert done["state"] == "succeeded" and done["counts"]["imported"] == 1
    entry = lane.http.get(f"/v1/dlq/{ad_id}").json()
    assert entry["adId"] == ad_id and "id" not in entry
    assert all("id" not in e for e in lane.dlq()["items"])
    # the same through `gamead dlq import`: an older export's file (id beside adId) imports line by line
    cli_entry = made_up_entry("Older Export File")
    dump = tmp_path / "older.jsonl"
    dump.write_text(json.dumps({**cli_entry, "id": cli_entry["adId"]}) + "\n")
    imported = CliRunner().invoke(cli, ["dlq", "import", str(dump), "--api", lane.url, "-o", "json"])
    assert imported.exit_code == 0, imported.output
    assert json.loads(imported.stdout)["imported"] == 1
    assert "id" not in lane.http.get(f"/v1/dlq/{cli_entry['adId']}").json()
    dump.write_text(json.dumps({**cli_entry, "id": older["adId"]}) + "\n")
    mismatched = CliRunner().invoke(cli, ["dlq", "import", str(dump), "--api", lane.url])
    assert mismatched.exit_code != 0 and "id" in mismatched.output and "Traceback" not in mismatched.output


def test_a_catastrophic_regex_never_blocks_the_event_loop(lane: Lane) -> None:
    """Issue 9.8: `GET /v1/dlq?message=(.*)*X` against one ordinary entry froze the API (`/healthz` stopped
    answering). RE2 matches in linear time; a pattern RE2 cannot take is 422."""
    ad_id, _ = _dead_entry(lane)
    answers: list[int] = []

    def search() -> None:
        answers.append(lane.http.get("/v1/dlq", params={"message": "(.*)*X"}).status_code)

    thread = threading.Thread(target=search)
    thread.start()
    with httpx.Client(base_url=lane.url, timeout=5) as other:
        assert other.get("/healthz").status_code == 200
    thread.join(30)
    assert answers == [200]
    assert lane.http.get("/v1/dlq", params={"message": "(.*)*X"}).json()["items"] == []
    assert lane.dlq(message="(.*)*injected")["count"] >= 1
    for path, body in [("/v1/dlq/replay", {"filter": {"message": "(.*)*X"}, "dryRun": True}),
                       ("/v1/dlq/purge", {"filter": {"message": "(.*)*X"}, "dryRun": True})]:
        assert lane.http.post(path, json=body).json()["matched"] == 0
    jobs = _jobs(lane, "replay") + _jobs(lane, "purge")
    for bad in ["(?<=a)b", "(a)\\1", "(", "x" * 1001]:
        for resp in (lane.http.get("/v1/dlq", params={"message": bad}),
                     lane.http.post("/v1/dlq/replay", json={"filter": {"message": bad}}),
                     lane.http.post("/v1/dlq/purge", json={"filter": {"message": bad}, "confirm": True})):
            assert resp.status_code == 422 and resp.json()["error"]["code"] == "validation_failed", resp.text
    assert _jobs(lane, "replay") + _jobs(lane, "purge") == jobs  # none of those started a job
    _healthy(lane, ad_id)


def test_a_time_without_an_offset_is_utc_everywhere_and_never_a_500(lane: Lane) -> None:
    """Issue 9.9: `since=2024-01-01T00:00:00` answered 500 on list, replay and purge when entries existed; an
    imported entry whose `deadAt` had no offset then broke every later time filter."""
    _dead_entry(lane)
    naive = "2024-01-01T00:00:00"
    assert lane.dlq(since=naive)["count"] >= 1 and lane.dlq(until=naive)["count"] == 0
    for path in ("/v1/dlq/replay", "/v1/dlq/purge"):
        resp = lane.http.post(path, json={"filter": {"since": naive}, "dryRun": True})
        assert resp.status_code == 200 and resp.json()["matched"] >= 1, resp.text
    entry = made_up_entry("Old Input")
    ad_id = entry["adId"]
    entry["deadAt"] = naive  # no offset: read as UTC
    assert lane.run_job("/v1/dlq/import", {"entries": [entry]})["counts"]["imported"] == 1
    window = {"since": naive, "until": "2024-01-01T00:00:01"}
    (found,) = lane.dlq(**window)["items"]
    assert found["adId"] == ad_id and found["deadAt"] == "2024-01-01T00:00:00Z"
    assert lane.dlq(since="2024-01-01T00:00:01", until="2024-06-01")["count"] == 0
    assert lane.dlq(since="2024-01-01T01:00:00+01:00", until="2024-01-01T00:00:01Z")["count"] == 1  # same instant
    for bad in ["2x", "99999-01-01", "0001-01-01T00:00:00+01:00"]:
        resp = lane.http.get("/v1/dlq", params={"since": bad})
        assert resp.status_code == 422 and resp.json()["error"]["code"] == "validation_failed", resp.text
    _healthy(lane, ad_id)


def test_a_reversed_time_window_is_refused_on_every_route_that_takes_one(lane: Lane) -> None:
    """Reviewer V10, N3: `since` later than `until` answered an empty list (and a job matching nothing) as if
    the DLQ were empty. Every route that takes both answers 422 `validation_failed` naming `since`, and writes
    nothing."""
    ad_id, _ = _dead_entry(lane)
    later, earlier = "2026-01-02T00:00:00Z", "2026-01-01T00:00:00Z"
    replays, purges = _jobs(lane, "replay"), _jobs(lane, "purge")
    answers = [lane.http.get("/v1/dlq", params={"since": later, "until": earlier}),
               lane.http.get("/v1/dlq", params={"since": earlier, "until": earlier}),  # an empty window too
               lane.http.get("/v1/audit", params={"since": later, "until": earlier})]
    for path in ("/v1/dlq/replay", "/v1/dlq/purge"):
        for extra in ({"dryRun": True}, {"confirm": True} if path.endswith("purge") else {}):
            answers.append(lane.http.post(path, json={"filter": {"since": later, "until": earlier}, **extra}))
    for resp in answers:
        assert resp.status_code == 422, (resp.request.url, resp.text[:300])
        error = resp.json()["error"]
        assert error["code"] == "validation_failed" and error["details"][0]["loc"] == "since", error
    assert (_jobs(lane, "replay"), _jobs(lane, "purge")) == (replays, purges)  # no job was started
    assert lane.dlq(since=earlier, until=later)["count"] == 0  # the right way round still answers
    _healthy(lane, ad_id)


def test_a_filter_that_narrows_nothing_is_refused_on_every_route_that_takes_one(lane: Lane) -> None:
    """attack60: a filter of an empty value (a script's `"message": "$UNSET"`) acted on every entry or on none: a
    purge of `{"filter": {"message": ""}}` (or `{"filter": {}}`) matched the whole DLQ (1,331 of 1,331) without
    `all`, and one of `{"errorClass": ""}` matched 0 while `GET /v1/dlq?errorClass=` listed them all. Each is 422
    `validation_failed` naming the field (`filter` when it names none), and starts no job."""
    ad_id, _ = _dead_entry(lane)
    replays, purges = _jobs(lane, "replay"), _jobs(lane, "purge")
    answers = [(lane.http.get("/v1/dlq", params={"errorClass": ""}), "errorClass"),
               (lane.http.get("/v1/dlq", params={"message": ""}), "message")]
    for path in ("/v1/dlq/replay", "/v1/dlq/purge"):
        for flt, loc in (({"message": ""}, "message"), ({"errorClass": ""}, "errorClass"), ({}, "filter"),
                         ({"message": None, "priority": None}, "filter")):
            for extra in ({"dryRun": True}, {"confirm": True} if path.endswith("purge") else {}):
                answers.append((lane.http.post(path, json={"filter": flt, **extra}), loc))
    for resp, loc in answers:
        assert resp.status_code == 422, (resp.request.url, resp.request.content, resp.text[:300])
        error = resp.json()["error"]
        assert error["code"] == "validation_failed" and error["details"][0]["loc"] == loc, error
    assert (_jobs(lane, "replay"), _jobs(lane, "purge")) == (replays, purges)  # no job was started
    assert lane.http.get(f"/v1/dlq/{ad_id}").status_code == 200  # the entry is still there
    _healthy(lane, ad_id)


def test_a_list_bounded_by_its_scan_budget_says_so_and_pages_on(lane: Lane) -> None:
    """Item 8, second half: a filter scan reads at most `dlq.scan_limit` entries per request (10 here), and
    says where it stopped, so a huge DLQ cannot stall the API either."""
    _, url = lane.api(GAMEAD_DLQ__SCAN_LIMIT="10")
    ids = [lane.submit(f"Doomed Scan {i}") for i in range(12)]
    for ad_id in ids:
        lane.dead(ad_id)
    total = lane.dlq()["total"]
    with httpx.Client(base_url=url, timeout=10) as small:
        scanned, cursor, pages = 0, 0, 0
        while True:
            page = small.get("/v1/dlq", params={"message": "^nothing matches$", "cursor": cursor}).json()
            assert page["count"] == 0 and page["scanned"] <= 10
            scanned, pages = scanned + page["scanned"], pages + 1
            if page["complete"]:
                break
            cursor = page["nextCursor"]
        assert scanned == total and pages == -(-total // 10)
        assert small.post("/v1/dlq/replay", json={"all": True, "dryRun": True}).json() == \
            {"matched": 10, "dryRun": True, "complete": False, "stoppedAt": "dlq.scan_limit", "scanned": 10,
             "pastLimit": False}
        newest = small.get("/v1/dlq", params={"newest": True, "limit": 5}).json()
        everything = lane.dlq()["items"]  # the lane's own API reads up to 100,000 entries
        assert [e["adId"] for e in newest["items"]] == [e["adId"] for e in reversed(everything[-5:])]
        assert newest["complete"] is False and newest["total"] == total
    assert broken_invariants(lane.nats.url, ids) == []
    assert_doctor_clean(lane.url)


def test_a_deleted_jobs_bucket_is_recreated_by_the_running_api(lane: Lane) -> None:
    async def delete_bucket() -> None:
        nc = await nats.connect(lane.nats.url)
        try:
            await nc.jetstream().delete_key_value(names.JOBS_BUCKET)
        finally:
            await nc.close()

    assert lane.http.get("/v1/jobs").status_code == 200
    asyncio.run(delete_bucket())
    wait_for(lambda: lane.http.get("/v1/jobs").status_code == 200, timeout=15, what="the jobs bucket to come back")
    done = lane.run_job("/v1/dlq/purge", {"ids": [OTHER_ID], "confirm": True})
    assert done["state"] == "succeeded" and done["counts"]["matched"] == 0 and done["selection"]["notInDlq"] == 1
    assert_doctor_clean(lane.url)
