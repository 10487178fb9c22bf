"""DLQ replay as a server-side job (issue 9 item 1, issue 10 item 5), on real NATS with real workers: jobs that
overlap or are interrupted never strand an ad, a job outlives its client and its API node, and its summary
reports what really became of the replayed ads."""

from __future__ import annotations

import json
import signal

import httpx
from typer.testing import CliRunner

from gamead_cli.commands.dlq_views import job_summary
from gamead_cli.main import app as cli
from tests.integration.dlq_lane import (  # noqa: F401 - lane is a fixture
    DOOMED, Lane, broken_invariants, dlq_last_seq, lane, made_up_entry,
)
from tests.support import SAMPLE_AD, Proc, assert_doctor_clean, clean_env, gamead_argv, wait_for, wait_terminal

_AD = {k: v for k, v in SAMPLE_AD.items() if k != "title"}


def _replayed_at_least(lane: Lane, job_id: str, n: int, http: httpx.Client | None = None) -> bool:
    return (http or lane.http).get(f"/v1/jobs/{job_id}").json()["counts"].get("replayed", 0) >= n


def _dead_ads(lane: Lane, n: int) -> list[str]:
    """``n`` dead ads with their DLQ entries, made by an import (faster than a faulty worker)."""
    entries = [made_up_entry(f"Dead {i}") for i in range(n)]
    assert lane.run_job("/v1/dlq/import", {"entries": entries})["counts"]["imported"] == n
    return [e["adId"] for e in entries]


def _adds_up(job: dict) -> None:
    c = job["counts"]
    assert c["matched"] == c["done"] + c["remaining"], c
    assert c["done"] == c["replayed"] + c["skipped"], c
    assert c["replayed"] == c["completed"] + c["deadAgain"] + c["stillRunning"], c
    assert c["skipped"] == sum(job["skippedReasons"].values()), job


def test_two_overlapping_replay_all_jobs_strand_no_ad_and_their_counts_add_up(lane: Lane) -> None:
    """Issue 9.1: ten ads that always fail permanently; replay-all at 2/s and, part-way (1.2 s in), another
    replay-all. Before: 7 of 10 ended `queued` with no work message, and a later replay-all deleted their
    entries. Now: every ad is dead with exactly one DLQ entry, and the two jobs' counts add up to the
    replays that happened (one new DLQ entry per replay: the ad died again)."""
    lane.worker(**DOOMED)
    ids = [lane.submit(f"Doomed {i}") for i in range(10)]
    for ad_id in ids:
        lane.dead(ad_id)
    first = lane.start_job("/v1/dlq/replay", {"all": True, "rate": 2})
    assert first["state"] in ("queued", "running") and first["startedBy"] == "anonymous"
    wait_for(lambda: _replayed_at_least(lane, first["id"], 2), timeout=20, what="the first job to be 1.2 s in")
    second = lane.start_job("/v1/dlq/replay", {"all": True, "rate": 2})
    a, b = lane.job_done(first["id"]), lane.job_done(second["id"])
    wait_for(lambda: not broken_invariants(lane.nats.url, ids), timeout=20, what="every ad settled")
    assert broken_invariants(lane.nats.url, ids) == []
    assert all(lane.http.get(f"/ads/{i}").json()["status"] == "dead" for i in ids)
    replays = dlq_last_seq(lane.nats.url) - len(ids)  # each replay of a doomed ad wrote one new entry
    for job in (a, b):
        assert job["state"] == "succeeded", job
        _adds_up(job)
    assert a["counts"]["replayed"] + b["counts"]["replayed"] == replays
    assert a["counts"]["deadAgain"] + b["counts"]["deadAgain"] == replays
    assert a["counts"]["matched"] == 10 and a["selection"]["fence"] == 10
    print(f"first job: {a['counts']} {a['skippedReasons']}; second: {b['counts']} {b['skippedReasons']}")
    assert_doctor_clean(lane.url)


def test_an_interrupted_cli_replay_goes_on_and_a_second_replay_strands_nothing(lane: Lane, procs: list[Proc]) -> None:
    """Issue 9.1: Ctrl-C `gamead dlq replay --all --rate 1` after 3 s, then `gamead dlq replay --all` again."""
    lane.worker(**DOOMED)
    ids = [lane.submit(f"Doomed {i}") for i in range(6)]
    for ad_id in ids:
        lane.dead(ad_id)
    first = Proc("cli", gamead_argv("dlq", "replay", "--all", "--rate", "1", "--yes", "--api", lane.url),
                 clean_env(), lane.logs / "cli-replay.log").start()
    procs.append(first)

    def running_job() -> dict | None:
        items = lane.http.get("/v1/jobs").json()["items"]
        return items[0] if items and items[0]["counts"].get("replayed", 0) >= 3 else None

    job = wait_for(running_job, timeout=20, what="3 s of the CLI's replay")
    first.signal(signal.SIGINT)
    wait_for(lambda: not first.alive(), timeout=10, what="the CLI to exit")
    assert first.popen is not None and first.popen.returncode == 130
    said = first.output()  # each follow-up a whole command (README: printed commands work verbatim)
    assert f"error: interrupted (Ctrl-C): job {job['id']} continues on the server: " in said and f"dlq cancel {job['id']} --api " in said
    assert "Traceback" not in first.output()
    # the server goes on: the client's Ctrl-C cancelled nothing (on a slow machine the job may be done by now;
    # that it ends "succeeded", every count adding up, is checked below)
    assert lane.http.get(f"/v1/jobs/{job['id']}").json()["state"] in ("running", "succeeded")

    again = CliRunner().invoke(cli, ["dlq", "replay", "--all", "--yes", "--api", lane.url, "-o", "json"])
    assert again.exit_code == 0, again.output
    second = json.loads(again.stdout)
    a = lane.job_done(job["id"])
    wait_for(lambda: not broken_invariants(lane.nats.url, ids), timeout=20, what="every ad settled")
    replays = dlq_last_seq(lane.nats.url) - len(ids)
    for done in (a, second):
        assert done["state"] == "succeeded", done
        _adds_up(done)
    assert a["counts"]["replayed"] + second["counts"]["replayed"] == replays
    assert_doctor_clean(lane.url)


def test_the_summary_reports_what_the_replayed_ads_became_and_a_closed_stream_never_stops_the_job(
    lane: Lane,
) -> None:
    """Issue 10.5: `gamead dlq replay --all` printed `completed: 0` when all 28 replayed ads completed."""
    ids = _dead_ads(lane, 28)
    lane.worker()  # the fix is deployed
    with lane.http.stream("POST", "/v1/dlq/replay", json={"all": True, "rate": 50},
                          headers={"Accept": "application/x-ndjson"}) as stream:
        assert stream.status_code == 200
        job = json.loads(next(stream.iter_lines()))
    # the client went away after one line; the job goes on
    shown = CliRunner().invoke(cli, ["dlq", "jobs", job["id"], "--follow", "--api", lane.url])
    assert shown.exit_code == 0, shown.output
    line = " ".join(shown.stdout.split())  # as one line, whatever the terminal's width
    assert "replayed 28 of 28 matched · completed 28 · dead again 0 · skipped 0" in line  # ended: none unfinished
    assert all(wait_terminal(lane.http, i)["status"] == "completed" for i in ids)
    assert broken_invariants(lane.nats.url, ids) == []
    assert_doctor_clean(lane.url)


def test_a_job_whose_api_node_dies_is_resumed_by_another_and_replays_each_ad_once(lane: Lane) -> None:
    """A job is not "running" for ever when its node dies: another API node takes it over once its lease
    (2 s here) expires and finishes it; the fences make the re-examined items safe. The worker starts after the
    kill: until then the job cannot finish (it follows its replayed ads to their outcome), however slow the
    machine (with a worker already running, it could end before the kill)."""
    ids = _dead_ads(lane, 6)
    doomed_node, doomed_url = lane.api()
    with httpx.Client(base_url=doomed_url, timeout=10) as doomed_http:
        job = lane.start_job("/v1/dlq/replay", {"all": True, "rate": 3}, http=doomed_http)
        wait_for(lambda: _replayed_at_least(lane, job["id"], 2, doomed_http), timeout=20, what="2 replays")
    doomed_node.kill()
    lane.worker()
    done = lane.job_done(job["id"], timeout=60)
    assert done["state"] == "succeeded" and done["resumes"] == 1 and done["runner"] != job["runner"], done
    _adds_up(done)
    assert done["counts"]["replayed"] == 6 and done["counts"]["completed"] == 6
    records = [wait_terminal(lane.http, i) for i in ids]
    assert [r["status"] for r in records] == ["completed"] * 6
    assert all(r["attempts"] == 1 and r["jobId"] == job["id"] for r in records)  # replayed once, analysed once
    assert broken_invariants(lane.nats.url, ids) == []
    assert_doctor_clean(lane.url)


def test_cancel_stops_a_job_and_leaves_the_rest_in_the_dlq(lane: Lane) -> None:
    ids = _dead_ads(lane, 6)
    lane.worker()
    job = lane.start_job("/v1/dlq/replay", {"all": True, "rate": 1})
    wait_for(lambda: _replayed_at_least(lane, job["id"], 1), timeout=20, what="one replay")
    runner = CliRunner()
    cancelled = runner.invoke(cli, ["dlq", "cancel", job["id"], "--api", lane.url])
    assert cancelled.exit_code == 0 and "cancel asked" in cancelled.stdout, cancelled.output
    done = lane.job_done(job["id"])
    assert done["state"] == "cancelled" and done["stopReason"] == "cancelled by anonymous", done
    assert done["phase"] == "done", done  # it ended: never "acting" for ever (attack28b M2)
    _adds_up(done)
    left = done["counts"]["remaining"]
    assert left >= 1 and lane.dlq()["total"] == left
    again = lane.http.post(f"/v1/jobs/{job['id']}/cancel")
    assert again.status_code == 409 and again.json()["error"]["code"] == "job_finished"
    listed = runner.invoke(cli, ["dlq", "jobs", "--state", "cancelled", "--api", lane.url, "-o", "json"])
    assert [j["id"] for j in json.loads(listed.stdout)["items"]] == [job["id"]]
    # an ended job follows nothing: its line never says "still running" (a reviewer's cancelled replay said
    # "still running 14" for ads dead 26 minutes earlier); the last look settled what had finished
    line = job_summary(done)
    assert "still running" not in line and f"completed {done['counts']['completed']}" in line, line
    assert lane.http.get("/v1/jobs", params={"kind": "purge"}).json()["count"] == 0
    wait_for(lambda: not broken_invariants(lane.nats.url, ids), timeout=20, what="every ad settled")
    assert_doctor_clean(lane.url)


def test_a_replay_refused_by_a_full_work_queue_puts_the_record_back_and_says_why(
    fresh_nats, procs: list[Proc], tmp_path,  # noqa: ANN001 - pytest fixtures
) -> None:
    """A replay whose publish the work stream refuses (at `queue.max_msgs`) leaves the ad dead with its entry,
    never `queued` without a message; the job ends `failed` and says why."""
    from tests.integration.dlq_lane import COMMON
    from tests.support import start_api

    server = fresh_nats()
    api, url = start_api(server.url, tmp_path, **{**COMMON, "GAMEAD_QUEUE__MAX_MSGS": "2"})  # no worker
    procs.append(api)
    small = Lane(server, url, tmp_path, procs)
    entries = [made_up_entry(f"Dead {i}") for i in range(2)]
    assert small.run_job("/v1/dlq/import", {"entries": entries})["counts"]["imported"] == 2
    ids = [e["adId"] for e in entries]
    waiting = [small.submit("Waiting For A Worker") for _ in range(2)]  # the work stream is now full
    assert small.http.post("/ads", json={"title": "One Too Many", **_AD}).status_code == 503
    job = small.run_job("/v1/dlq/replay", {"all": True})
    assert job["state"] == "failed" and "full" in job["stopReason"], job
    assert job["counts"]["replayed"] == 0 and job["counts"]["remaining"] == 2
    assert [small.http.get(f"/ads/{i}").json()["status"] for i in ids] == ["dead", "dead"]
    assert broken_invariants(server.url, [*ids, *waiting]) == []
    assert_doctor_clean(url)
    small.http.close()


def test_a_running_replays_live_counts_say_what_its_replayed_ads_became(lane: Lane) -> None:
    """ops13 finding 1: `gamead dlq jobs JOB` during `dlq replay --all --rate 4 --detach` of always-failing ads
    said "replayed 72 … dead again 0 · still running 72" while `GET /ads/<id>` showed a replayed ad dead again
    with that jobId (outcomes were counted only after the job). Now, while the job still acts, the ads seen
    dead again are counted as dead again, in the job document and in the CLI's line."""
    lane.worker(**DOOMED)
    ids = [lane.submit(f"Doomed {i}") for i in range(16)]
    for ad_id in ids:
        lane.dead(ad_id)
    job = lane.start_job("/v1/dlq/replay", {"all": True, "rate": 2})  # 8 s of acting

    def dead_again_while_acting() -> dict | None:
        doc = lane.http.get(f"/v1/jobs/{job['id']}").json()
        assert doc["phase"] in ("selecting", "acting"), f"the job was past acting before any outcome was seen: {doc}"
        return doc if doc["counts"].get("deadAgain", 0) >= 1 else None

    live = wait_for(dead_again_while_acting, timeout=20, what="a replayed ad counted dead again while the job acts")
    assert live["state"] == "running"
    _adds_up(live)
    # what an operator reads then says it too (the API's answer is read again: the counts only grow)
    shown = CliRunner().invoke(cli, ["dlq", "jobs", job["id"], "--api", lane.url, "-o", "json"])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["counts"]["deadAgain"] >= 1
    line = " ".join(CliRunner().invoke(cli, ["dlq", "jobs", job["id"], "--api", lane.url]).stdout.split())
    assert "dead again 0" not in line, line
    done = lane.job_done(job["id"])
    _adds_up(done)
    wait_for(lambda: not broken_invariants(lane.nats.url, ids), timeout=20, what="every ad settled")
    assert_doctor_clean(lane.url)
