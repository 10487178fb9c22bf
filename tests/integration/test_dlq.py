"""Retries with backoff, the dead-letter queue, and `gamead dlq` — on real NATS with real workers."""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import httpx
from typer.testing import CliRunner

from gamead_cli.main import app as cli
from gamead_core.worker.backoff import backoff_ceiling
from tests.integration.dlq_lane import (  # noqa: F401 - lane is a fixture
    BASE,
    COMMON,
    DOOMED,
    MAX_ATTEMPTS,
    POISON,
    Lane,
    broken_invariants,
    lane,
)
from tests.support import KvWatch, start_api, wait_for, wait_terminal


def test_a_poison_ad_is_dead_lettered_after_exactly_max_attempts_with_growing_backoff(lane: Lane) -> None:
    lane.worker(**POISON)
    # watching before the submit: an idle worker starts the ad within milliseconds of its 202, so a watch
    # opened after it can miss the first attempt's writes
    watch = KvWatch(lane.nats.url, ">")
    try:
        ad_id = lane.submit("Poison Pill", priority=2)
        record = lane.dead(ad_id)
    finally:
        watch.close()
    assert record["attempts"] == MAX_ATTEMPTS
    assert record["error"]["errorClass"] == "RetryableError"
    (entry,) = lane.dlq()["items"]
    assert entry["adId"] == ad_id and entry["attempts"] == MAX_ATTEMPTS and entry["priority"] == 2
    assert entry["errorClass"] == "RetryableError" and "injected" in entry["errorMessage"]
    assert entry["workerId"] == "w1" and entry["firstFailureAt"] < entry["lastFailureAt"] <= entry["deadAt"]
    # every failed attempt but the last scheduled a retry inside its (doubling) backoff window,
    # and the next attempt did not start before it was due. The first attempt (a first delivery, shorter
    # than worker.processing_mark_after) wrote only its outcome, charged; each retry is a redelivery and is
    # marked processing before it starts (issue 14.2)
    writes = watch.of(ad_id)
    retries = [w for w in writes if w["status"] == "queued" and w.get("retryAt")]
    starts = [w for w in writes if w["status"] == "processing"]
    assert [w["attempts"] for w in retries] == list(range(1, MAX_ATTEMPTS))
    assert len(starts) == MAX_ATTEMPTS - 1
    for n, (retry, nxt) in enumerate(zip(retries, starts), start=1):
        failed_at = datetime.fromisoformat(retry["error"]["at"])
        due = datetime.fromisoformat(retry["retryAt"])
        assert 0 <= (due - failed_at).total_seconds() <= backoff_ceiling(n, base=BASE, cap=60) + 1e-6
        assert datetime.fromisoformat(nxt["startedAt"]) >= due
    assert backoff_ceiling(2, base=BASE, cap=60) == 2 * backoff_ceiling(1, base=BASE, cap=60)


def test_a_permanent_error_is_dead_lettered_after_one_attempt(lane: Lane) -> None:
    lane.worker(**DOOMED)  # an ad without letters, the analyser's permanent error, is refused at submit (422)
    ad_id = lane.submit("Doomed Quest", priority=1)
    record = lane.dead(ad_id)
    assert record["attempts"] == 1
    entry = lane.http.get(f"/v1/dlq/{ad_id}").json()
    assert entry["errorClass"] == "PermanentError" and entry["retryable"] is False
    assert "injected permanent fault" in entry["errorMessage"]


def test_sigkill_on_the_last_attempt_still_ends_in_the_dlq(lane: Lane) -> None:
    doomed = lane.worker(GAMEAD_WORKER__MAX_ATTEMPTS="1", GAMEAD_ANALYSIS__SIMULATED_LATENCY_MS="60000")
    ad_id = lane.submit("Last Chance", priority=3)
    wait_for(lambda: lane.http.get(f"/ads/{ad_id}").json()["status"] == "processing", timeout=20,
             what="the last attempt to start")
    doomed.kill()
    lane.worker(GAMEAD_WORKER__MAX_ATTEMPTS="1")  # any live worker runs the mover
    record = lane.dead(ad_id, timeout=40)
    assert record["error"]["errorClass"] == "WorkerLost"
    entry = lane.http.get(f"/v1/dlq/{ad_id}").json()
    assert entry["errorClass"] == "WorkerLost" and entry["attempts"] == 1
    # and it left the work queue: nothing is stranded there
    stats = lane.http.get("/ads", params={"status": "processing"}).json()
    assert ad_id not in {r["id"] for r in stats["items"]}


def test_replay_after_the_fault_is_fixed_completes_exactly_once_and_twice_enqueues_once(lane: Lane) -> None:
    faulty = lane.worker(**POISON)
    ad_id = lane.submit("Poison Then Fixed", priority=4)
    lane.dead(ad_id)
    faulty.stop()
    lane.worker()  # the fix is deployed
    watch = KvWatch(lane.nats.url, ad_id)
    try:
        results: list[dict] = []

        def replay() -> None:
            results.append(lane.run_job("/v1/dlq/replay", {"ids": [ad_id]}))

        threads = [threading.Thread(target=replay) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        record = wait_terminal(lane.http, ad_id)
        again = lane.http.post("/v1/dlq/replay", json={"ids": [ad_id], "dryRun": True}).json()
        wait_for(lambda: lane.dlq()["total"] == 0, what="the entry to leave the DLQ")
    finally:
        watch.close()
    assert record["status"] == "completed" and record["attempts"] == 1
    assert sum(r["counts"]["replayed"] for r in results) == 1, results
    assert sum(r["counts"]["completed"] for r in results) == 1, results
    assert again["matched"] == 0 and again["notInDlq"] == 1
    assert watch.statuses().count("completed") == 1
    assert record["replayOf"] is not None and record["jobId"] in {r["id"] for r in results}
    assert broken_invariants(lane.nats.url, [ad_id]) == []


def test_filters_select_what_they_say_and_purge_removes_only_what_it_names(lane: Lane) -> None:
    poison = lane.worker(**POISON)
    retry_ids = [lane.submit(f"Poison {i}", priority=5) for i in range(2)]
    for ad_id in retry_ids:
        lane.dead(ad_id)
    poison.stop()  # one fault mode per worker: then one whose faults are permanent
    lane.worker(**DOOMED)
    perm_id = lane.submit("Doomed Filter", priority=1)
    lane.dead(perm_id)
    assert {e["adId"] for e in lane.dlq(errorClass="PermanentError")["items"]} == {perm_id}
    assert {e["adId"] for e in lane.dlq(priority=5)["items"]} == set(retry_ids)
    assert {e["adId"] for e in lane.dlq(message="^injected retryable")["items"]} == set(retry_ids)
    assert lane.dlq(since="2999-01-01T00:00:00Z")["items"] == []
    assert len(lane.dlq(until="2999-01-01T00:00:00Z")["items"]) == 3
    page = lane.dlq(limit=2)
    assert page["count"] == 2 and page["total"] == 3 and page["nextCursor"]
    rest = lane.dlq(limit=2, cursor=page["nextCursor"])
    assert {e["adId"] for e in page["items"] + rest["items"]} == {*retry_ids, perm_id}
    bad = lane.http.get("/v1/dlq", params={"message": "("})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "validation_failed"

    refused = lane.http.post("/v1/dlq/purge", json={"ids": [retry_ids[0]]})
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "confirmation_required"
    assert refused.json()["error"]["details"] == {"matched": 1}
    done = lane.run_job("/v1/dlq/purge", {"ids": [retry_ids[0]], "confirm": True})
    assert done["state"] == "succeeded" and done["counts"]["matched"] == 1 and done["counts"]["purged"] == 1
    assert {e["adId"] for e in lane.dlq()["items"]} == {retry_ids[1], perm_id}
    purged = lane.http.get(f"/ads/{retry_ids[0]}").json()  # the record stays, given up for good
    assert purged["status"] == "failed" and purged["error"]["errorClass"] == "RetryableError"
    assert purged["purgedFrom"] and purged["jobId"] == done["id"]
    assert broken_invariants(lane.nats.url, [*retry_ids, perm_id]) == []


def test_export_then_import_round_trips_every_field(lane: Lane, tmp_path: Path, fresh_nats) -> None:  # noqa: ANN001
    poison = lane.worker(**POISON)
    ids = [lane.submit("Poison Export", priority=2)]
    lane.dead(ids[0])
    poison.stop()  # one fault mode per worker: then a permanent one
    lane.worker(**DOOMED)
    ids.append(lane.submit("Doomed Export", priority=3))
    lane.dead(ids[1])
    before = {e["adId"]: e for e in lane.dlq()["items"]}
    dump = tmp_path / "dead.jsonl"
    runner = CliRunner()
    exported = runner.invoke(cli, ["dlq", "export", str(dump), "--api", lane.url])
    assert exported.exit_code == 0, exported.output
    lines = [json.loads(line) for line in dump.read_text().splitlines()]
    assert {e["adId"] for e in lines} == set(ids)

    staging = fresh_nats()  # another environment: the ads do not exist there
    api, url = start_api(staging.url, tmp_path / "staging", **COMMON)
    try:
        imported = runner.invoke(cli, ["dlq", "import", str(dump), "--api", url, "-o", "json"])
        assert imported.exit_code == 0, imported.output
        assert json.loads(imported.stdout)["imported"] == 2
        with httpx.Client(base_url=url, timeout=10) as there:
            after = {e["adId"]: e for e in there.get("/v1/dlq").json()["items"]}
            records = {i: there.get(f"/ads/{i}").json() for i in ids}
            assert {r["status"] for r in records.values()} == {"dead"}
            # newcomer49: the record an import created had no `error`: `ads get` said not why the ad died
            assert {i: (r["error"]["errorClass"], r["error"]["message"]) for i, r in records.items()} == {
                i: (e["errorClass"], e["errorMessage"]) for i, e in before.items()}, records
        strip = lambda e: {k: v for k, v in e.items() if k != "seq"}  # noqa: E731 - the stream position is new
        assert {k: strip(v) for k, v in after.items()} == {k: strip(v) for k, v in before.items()}
        again = runner.invoke(cli, ["dlq", "import", str(dump), "--api", url, "-o", "json"])
        assert json.loads(again.stdout)["skipped"] == 2  # already there, identical
    finally:
        api.stop()

    purged = runner.invoke(cli, ["dlq", "purge", "--all", "--yes", "--api", lane.url])
    assert purged.exit_code == 0, purged.output
    assert lane.dlq()["total"] == 0
    assert {lane.http.get(f"/ads/{i}").json()["status"] for i in ids} == {"failed"}
    back = runner.invoke(cli, ["dlq", "import", str(dump), "--api", lane.url, "-o", "json"])
    totals = json.loads(back.stdout)  # a purge cannot be undone: failed is final
    purged_why = "the ad was purged here before: a purge is final"
    assert totals["imported"] == 0 and totals["skippedReasons"] == {purged_why: 2}
    # in words: each reason then its count (was 'skipped 2 (2 the ad was purged here (failed for good))')
    words = runner.invoke(cli, ["dlq", "import", str(dump), "--api", lane.url]).stdout
    # newcomer58: one reason for all the skipped is said without their count again ("… a purge is final — 2")
    assert " ".join(words.split()) == f"imported 0 of 2 lines · skipped 2: {purged_why}", words
    assert lane.dlq()["total"] == 0


def test_cli_replay_with_dry_run_confirmation_and_json(lane: Lane) -> None:
    faulty = lane.worker(**POISON)
    ad_id = lane.submit("Poison CLI", priority=3)
    lane.dead(ad_id)
    faulty.signal(signal.SIGTERM)
    runner = CliRunner()
    dry = runner.invoke(cli, ["dlq", "replay", "--all", "--dry-run", "--api", lane.url, "-o", "json"])
    assert dry.exit_code == 0 and json.loads(dry.stdout)["matched"] == 1
    no_yes = runner.invoke(cli, ["dlq", "replay", "--all", "--api", lane.url])
    assert no_yes.exit_code != 0 and "--yes" in no_yes.output
    listed = runner.invoke(cli, ["dlq", "list", "--api", lane.url, "-o", "json"])
    assert json.loads(listed.stdout)["items"][0]["adId"] == ad_id
    lane.worker()
    done = runner.invoke(cli, ["dlq", "replay", ad_id, "--yes", "--api", lane.url, "-o", "json"])
    assert done.exit_code == 0, done.output
    job = json.loads(done.stdout)  # the final job document
    assert job["state"] == "succeeded" and job["counts"]["replayed"] == 1 and job["counts"]["completed"] == 1
    assert wait_terminal(lane.http, ad_id)["status"] == "completed"
    detached = runner.invoke(cli, ["dlq", "replay", "--all", "--yes", "--detach", "--api", lane.url])
    assert detached.exit_code == 0 and "no entries matched: nothing replayed" in detached.stdout, detached.output


def test_dlq_commands_against_a_down_api_print_one_red_line(closed_port: Callable[[], int]) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    for args in (["dlq", "list"], ["dlq", "replay", "--all", "--yes"], ["dlq", "export", "-"]):
        result = CliRunner().invoke(cli, [*args, "--api", url])
        assert result.exit_code == 3
        lines = [ln for ln in result.output.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("error:") and url in lines[0]
        assert "Traceback" not in result.output


def test_an_analysis_past_the_task_timeout_is_a_failed_attempt(lane: Lane) -> None:
    lane.worker(GAMEAD_WORKER__FAULTS__RATE="1", GAMEAD_WORKER__FAULTS__MODE="hang",
                GAMEAD_WORKER__TASK_TIMEOUT="0.5", GAMEAD_WORKER__FAULTS__MATCH="^Hang")
    record = lane.dead(lane.submit("Hang Forever"))
    assert record["error"]["errorClass"] == "TaskTimeout" and record["attempts"] == MAX_ATTEMPTS


def test_a_long_analysis_keeps_its_lease_and_is_not_redelivered(lane: Lane) -> None:
    # ack_wait is 2 s; the analysis takes 5 s: in_progress() must keep the ad from going to another worker
    lane.worker(GAMEAD_ANALYSIS__SIMULATED_LATENCY_MS="5000")
    ad_id = lane.submit("Slow But Steady")
    wait_for(lambda: lane.http.get(f"/ads/{ad_id}").json().get("workerId") == "w1", timeout=20,
             what="the slow worker to take the ad")
    lane.worker()  # an idle worker that would take the ad if its lease lapsed
    record = wait_terminal(lane.http, ad_id, timeout=30)
    assert record["status"] == "completed" and record["attempts"] == 1 and record["workerId"] == "w1"


def test_bulk_replay_stops_when_replayed_ads_keep_failing(lane: Lane) -> None:
    lane.worker(GAMEAD_WORKER__FAULTS__RATE="1", GAMEAD_WORKER__FAULTS__MODE="permanent",
                GAMEAD_WORKER__FAULTS__MATCH="^Doomed")
    ids = [lane.submit(f"Doomed {i}") for i in range(12)]
    for ad_id in ids:
        lane.dead(ad_id)
    job = lane.run_job("/v1/dlq/replay", {"all": True, "rate": 3, "stopOnFailureRate": 0.5})
    counts = job["counts"]
    assert job["state"] == "failed" and counts["deadAgain"] >= 5, job
    assert counts["replayed"] < len(ids) and counts["remaining"] == len(ids) - counts["done"]  # the rest stayed
    assert "died again" in job["stopReason"] and f"{counts['remaining']} entries left in the DLQ" in job["stopReason"]
    assert broken_invariants(lane.nats.url, ids) == []


def test_dlq_total_counts_the_entries_matching_the_filters_as_for_ads(lane: Lane) -> None:
    """ops13 finding 6: `dlq list -p 5` printed "2 shown of 27 in the DLQ" and `-o json` `"total": 27` for 2
    matches, while `total` means "matching the filters" for `GET /ads`. Now `total` counts the matches (also
    past the page), `inDlq` the whole DLQ."""
    from tests.integration.dlq_lane import made_up_entry

    entries = [made_up_entry(f"Dead {i}", priority=5 if i < 3 else 2) for i in range(8)]
    assert lane.run_job("/v1/dlq/import", {"entries": entries})["counts"]["imported"] == 8
    page = lane.http.get("/v1/dlq", params={"priority": 5, "limit": 2}).json()
    assert (page["count"], page["total"], page["inDlq"]) == (2, 3, 8), page
    assert page["nextCursor"] is not None and page["complete"] is True
    whole = lane.http.get("/v1/dlq", params={"limit": 2}).json()
    assert (whole["count"], whole["total"], whole["inDlq"]) == (2, 8, 8), whole
    nothing = lane.http.get("/v1/dlq", params={"errorClass": "NoSuchClass"}).json()
    assert (nothing["count"], nothing["total"], nothing["inDlq"]) == (0, 0, 8), nothing
    shown = CliRunner().invoke(cli, ["dlq", "list", "-p", "5", "--api", lane.url])
    assert shown.exit_code == 0, shown.output
    assert "3 shown of 3 matching (8 in the DLQ)" in " ".join(shown.stdout.split()), shown.stdout
    as_json = CliRunner().invoke(cli, ["dlq", "list", "-p", "5", "--api", lane.url, "-o", "json"])
    assert (json.loads(as_json.stdout)["total"], json.loads(as_json.stdout)["inDlq"]) == (3, 8)


def test_a_page_asked_not_to_count_reads_one_entry_past_it_and_export_still_writes_every_match(
    lane: Lane, tmp_path: Path
) -> None:
    """review13: counting `total` on every page made `dlq export` of N filtered entries read ~N²/500 of them
    (each 500-entry page read on to `dlq.scan_limit` to count). A page with `count=false` (export's pages after
    the first) reads one match past itself and says `total: null`; the export still writes every match."""
    from tests.integration.dlq_lane import made_up_entry

    entries = [made_up_entry(f"Uncounted {i}", priority=4) for i in range(12)]
    assert lane.run_job("/v1/dlq/import", {"entries": entries})["counts"]["imported"] == 12
    first = lane.http.get("/v1/dlq", params={"priority": 4, "limit": 2}).json()
    matching = first["total"]
    assert matching >= 12 and first["nextCursor"] is not None, first
    params = {"priority": 4, "limit": 2, "cursor": first["nextCursor"]}
    counted = lane.http.get("/v1/dlq", params=params).json()
    uncounted = lane.http.get("/v1/dlq", params={**params, "count": "false"}).json()
    assert counted["total"] == matching and uncounted["total"] is None, (counted, uncounted)  # the filter's
    assert uncounted["items"] == counted["items"] and uncounted["nextCursor"] == counted["nextCursor"]
    assert uncounted["scanned"] < counted["scanned"], "the uncounted page stopped one match past itself"
    out = tmp_path / "p4.jsonl"
    done = CliRunner().invoke(cli, ["dlq", "export", str(out), "-p", "4", "--api", lane.url])
    assert done.exit_code == 0, done.output
    assert len(out.read_text().splitlines()) == matching


def test_dlq_list_prints_the_next_pages_command_whole_and_keeps_the_total(lane: Lane) -> None:
    """attack25d #8: the hint was ``more after --cursor 81`` (not a command; run as ``dlq list --cursor 81`` it
    dropped --since and showed an unrelated page) and "61 matching" became "60 matching" on page 2 (those left
    after the cursor). Now it prints the whole next command, filters and --api included, which runs verbatim,
    and every page says the filter's total, and (attack43b F4) which rows of it it holds."""
    import shlex
    from datetime import timezone

    from tests.integration.dlq_lane import made_up_entry

    since = datetime.now(timezone.utc).replace(microsecond=0).isoformat()
    entries = [made_up_entry(f"Paged {i}", priority=1 if i % 2 == 0 else 2) for i in range(10)]
    assert lane.run_job("/v1/dlq/import", {"entries": entries})["counts"]["imported"] == 10
    mine = {e["adId"] for e in entries if e["priority"] == 1}
    argv, seen, lines = ["dlq", "list", "-p", "1", "--since", since, "-n", "2", "--api", lane.url], [], []
    for _ in range(5):
        shown = CliRunner().invoke(cli, argv, env={"COLUMNS": "300"})
        assert shown.exit_code == 0, shown.output
        seen += [e for e in mine if e in shown.stdout]
        out = shown.stdout.strip().splitlines()
        lines.append(" ".join(out[-2 if "--cursor" in out[-1] else -1].split()))
        if "--cursor" not in out[-1]:
            break
        words = shlex.split(out[-1])
        assert words[1:3] == ["dlq", "list"] and "--since" in words and "--api" in words, out[-1]
        argv = words[1:]
    assert sorted(seen) == sorted(mine)  # every page of the filter, none twice, nothing else
    # attack43b F4: later pages said "2 shown of 5", "1 shown of 5", as if rows were missing; now which rows they are
    assert [line.split(" matching")[0] for line in lines] == ["2 shown of 5", "rows 3-4 of 5", "row 5 of 5"], lines


def test_a_replayed_ad_that_dies_again_says_so_in_dlq_list_and_show(lane: Lane) -> None:
    """attack25d #14: after a replay, a dead-again entry showed ``ATT 3`` (attempts since the replay) beside the
    first failure of its first life, and nothing said it had been replayed. Now the entry carries ``replays`` and
    ``replayedAt``; ``dlq list`` ATT says ``1 ↻1`` and ``dlq show`` labels both periods."""
    lane.worker(GAMEAD_WORKER__FAULTS__RATE="1", GAMEAD_WORKER__FAULTS__MODE="permanent",
                GAMEAD_WORKER__FAULTS__MATCH="^Twice")
    ad_id = lane.submit("Twice Dead", priority=3)
    first = lane.dead(ad_id)
    entry = lane.http.get(f"/v1/dlq/{ad_id}").json()
    assert "replays" not in entry and "replayedAt" not in entry  # a first death: nothing to label
    assert lane.run_job("/v1/dlq/replay", {"ids": [ad_id]})["counts"]["replayed"] == 1
    again = wait_for(lambda: (e := lane.http.get(f"/v1/dlq/{ad_id}").json()).get("replays") and e,
                     what="the entry of its second death")
    assert again["replays"] == 1 and again["attempts"] == 1 and again["replayedAt"] > first["firstFailureAt"]
    assert again["firstFailureAt"] == entry["firstFailureAt"]  # its first failure ever, before the replay
    shown = CliRunner().invoke(cli, ["dlq", "show", ad_id, "--api", lane.url], env={"COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    text = " ".join(shown.stdout.split())
    assert "attempts 1 analysis attempt since its last replay at" in text, text
    assert "replayed 1× from the DLQ, then dead again" in text, text
    assert "its first ever, before the replay" in text, text
    listed = CliRunner().invoke(cli, ["dlq", "list", "--api", lane.url], env={"COLUMNS": "200"})
    row = next(line for line in listed.stdout.splitlines() if ad_id in line)
    assert " 1 ↻1 " in row, listed.stdout
    # rcB: what P and ATT are was said under gamead top --once's DLQ table only, not under dlq list's
    assert "P: priority (1 most urgent … 5 least) · ATT: analysis attempts" in listed.stdout, listed.stdout
