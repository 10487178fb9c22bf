"""Operator jobs by the dozen (attack34a F2): one API node runs at most ``jobs.max_running`` of them; the rest are
refused at once, 503 ``jobs_busy`` with ``Retry-After``, never accepted and then failed on a NATS timeout.

The figure: 200 concurrent ``POST /v1/dlq/replay {"all": true}`` over a DLQ of 1,500 were all answered 202, then
191 ended ``failed`` (``TimeoutError: nats: timeout``, "NATS did not answer in time"), nats-server 45 → 228 MB;
200 purges matching nothing: 150 failed. Scaled down here: ``jobs.max_running`` 2, 10 jobs at once."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import httpx

from gamead_core.embedded import EmbeddedNats
from tests.integration.dlq_lane import COMMON, Lane, lane, made_up_entry  # noqa: F401 - lane is a fixture
from tests.support import Proc, clean_env, run_gamead, start_api, wait_for

BOUND = {"GAMEAD_JOBS__MAX_RUNNING": "2"}
NOTHING = {"filter": {"errorClass": "Nope"}, "confirm": True}  #: a purge matching nothing: a quick job


def _bounded_lane(lane: Lane) -> tuple[Lane, httpx.Client]:
    """The lane's DLQ holds 20 imported entries; a second API node on the same NATS runs at most 2 jobs."""
    entries = [made_up_entry(f"Dead {i}") for i in range(20)]
    assert lane.run_job("/v1/dlq/import", {"entries": entries})["counts"]["imported"] == 20
    _, url = lane.api(**BOUND)
    return lane, httpx.Client(base_url=url, timeout=30)


def _post_at_once(http: httpx.Client, path: str, body: dict, n: int) -> list[httpx.Response]:
    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(lambda _: http.post(path, json=body), range(n)))


def _most_at_once(jobs: list[dict]) -> int:
    """The most of ``jobs`` (ended) that ran at the same moment, from their startedAt/finishedAt."""
    events = sorted([(datetime.fromisoformat(j["startedAt"]), 1) for j in jobs]
                    + [(datetime.fromisoformat(j["finishedAt"]), -1) for j in jobs])
    most = now = 0
    for _, step in events:  # an end sorts before a start at the same instant
        now += step
        most = max(most, now)
    return most


def test_past_max_running_a_job_is_refused_jobs_busy_and_every_accepted_one_finishes(lane: Lane) -> None:
    """Two slow replays (0.2/s over 20 entries) fill ``jobs.max_running`` 2; then 10 purges at once: before, all 10
    answered 202 (and under load most then failed); now each is 503 ``jobs_busy`` with ``Retry-After`` and details
    naming the setting, and no job was stored for them. Once the replays are cancelled, the same 10 purges sent
    again until accepted all end ``succeeded`` (none failed for a timeout), never more than 2 at once."""
    lane, http = _bounded_lane(lane)
    slow = [lane.start_job("/v1/dlq/replay", {"all": True, "rate": 0.2}, http=http) for _ in range(2)]
    answers = _post_at_once(http, "/v1/dlq/purge", NOTHING, 10)
    assert [a.status_code for a in answers] == [503] * 10, [a.text for a in answers]
    for answer in answers:
        error = answer.json()["error"]
        assert error["code"] == "jobs_busy" and answer.headers["retry-after"], answer.text
        assert error["details"] == {"running": 2, "limit": 2, "setting": "jobs.max_running"}, error
        assert "jobs.max_running" in error["message"], error
    assert http.get("/v1/jobs", params={"kind": "purge"}).json()["items"] == []  # nothing stored for them
    for job in slow:
        assert http.post(f"/v1/jobs/{job['id']}/cancel").status_code == 202
        assert lane.job_done(job["id"], http=http)["state"] == "cancelled"

    def until_accepted(_: int) -> str:
        deadline = time.monotonic() + 60
        while True:
            answer = http.post("/v1/dlq/purge", json=NOTHING)
            if answer.status_code == 202:
                return str(answer.json()["id"])
            assert answer.status_code == 503 and answer.json()["error"]["code"] == "jobs_busy", answer.text
            assert time.monotonic() < deadline, "a purge was refused jobs_busy for 60 s"
            time.sleep(0.05)

    with ThreadPoolExecutor(10) as pool:
        ids = list(pool.map(until_accepted, range(10)))
    ended = [lane.job_done(job_id, http=http) for job_id in ids]
    assert [j["state"] for j in ended] == ["succeeded"] * 10, [j.get("stopReason") for j in ended]
    assert _most_at_once(ended) <= 2, ended
    http.close()


def test_the_cli_says_jobs_busy_in_one_red_line_and_exits_1(lane: Lane) -> None:
    """``gamead dlq replay --all --yes`` while the node runs ``jobs.max_running`` (2) slow replays: before, a third
    job was started; now one line on stderr naming ``jobs.max_running``, exit 1 (the README's row for
    ``jobs_busy``), no traceback."""
    lane, http = _bounded_lane(lane)
    for _ in range(2):
        lane.start_job("/v1/dlq/replay", {"all": True, "rate": 0.2}, http=http)
    done = run_gamead("dlq", "replay", "--all", "--yes", "--detach", "--api", str(http.base_url),
                      env={**clean_env(), "GAMEAD_CLIENT__RETRY_FOR": "0"})
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert len(lines) == 1 and "jobs.max_running" in lines[0] and "Traceback" not in done.stderr, done.stderr
    http.close()


def _runner_of(http: httpx.Client, job_id: str) -> tuple[str | None, int, str]:
    job = http.get(f"/v1/jobs/{job_id}").json()
    return job["runner"], job["resumes"], job["state"]


def test_a_node_at_max_running_resumes_no_dead_nodes_job_until_one_of_its_own_ends(
    fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path,
) -> None:
    """Node A runs a slow replay and dies (SIGKILL); node B (``jobs.max_running`` 1), the only other node, runs one
    of its own. Before, B's sweeper resumed A's job within a lease (2 s) all the same: 2 running where the bound
    says 1. Now A's job waits (its runner still A) for as long as B's own runs (watched over 4 leases); once B's
    job is cancelled, B resumes it."""
    server = fresh_nats()
    node_a, url_a = start_api(server.url, tmp_path / "a", **COMMON)
    procs.append(node_a)
    node_b, url_b = start_api(server.url, tmp_path / "b", **{**COMMON, "GAMEAD_JOBS__MAX_RUNNING": "1"})
    procs.append(node_b)
    lane = Lane(server, url_b, tmp_path, procs)
    http_a, http_b = httpx.Client(base_url=url_a, timeout=30), lane.http
    entries = [made_up_entry(f"Dead {i}") for i in range(20)]
    assert lane.run_job("/v1/dlq/import", {"entries": entries})["counts"]["imported"] == 20
    orphan = lane.start_job("/v1/dlq/replay", {"ids": [e["adId"] for e in entries[:10]], "rate": 0.2}, http=http_a)
    own = lane.start_job("/v1/dlq/replay", {"ids": [e["adId"] for e in entries[10:]], "rate": 0.2}, http=http_b)
    first_runner = _runner_of(http_b, orphan["id"])[0]
    node_a.kill()
    watched_until = time.monotonic() + 4 * 2.0  # 4 leases of 2 s: a sweeper takes an expired job within one
    while time.monotonic() < watched_until:
        runner, resumes, state = _runner_of(http_b, orphan["id"])
        assert (runner, resumes) == (first_runner, 0), f"resumed by {runner} while its own job ran"
        time.sleep(0.2)
    assert http_b.post(f"/v1/jobs/{own['id']}/cancel").status_code == 202
    assert lane.job_done(own["id"], http=http_b)["state"] == "cancelled"
    wait_for(lambda: _runner_of(http_b, orphan["id"])[1] == 1, timeout=30, what="node B to resume A's job")
    assert http_b.post(f"/v1/jobs/{orphan['id']}/cancel").status_code == 202
    assert lane.job_done(orphan["id"], http=http_b)["state"] == "cancelled"
    http_a.close()

