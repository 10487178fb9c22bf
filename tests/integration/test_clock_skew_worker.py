"""Workers whose host clocks disagree with nats-server's (attack33a F2, F4, F7, F8, F9): aging, the reaper, the
times a worker stamps into records and DLQ entries, queue-wait figures. Each worker runs under
tests/skewed_gamead.py (its time.time off by N seconds, its monotonic clock true); every time it compares or
stamps is nats-server's (gamead_core.clock), so the skew changes nothing a user sees."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from gamead_core import names
from gamead_core.embedded import EmbeddedNats
from tests.support import (
    Proc,
    ad,
    clean_env,
    on_a_free_port,
    on_js,
    reaper_lease_revision,
    serve_ready,
    start_api,
    wait_for,
    wait_terminal,
    wait_worker_ready,
)

SKEWED = str(Path(__file__).resolve().parents[1] / "skewed_gamead.py")
#: quick beats; a failing ad (title ``flaky…``) dies after 2 quick attempts
ENV = {"GAMEAD_REGISTRY__TTL": "4", "GAMEAD_REGISTRY__HEARTBEAT_INTERVAL": "1", "GAMEAD_RATELIMIT__ENABLED": "false",
       "GAMEAD_AUTOSCALER__BACKEND": "none", "GAMEAD_QUEUE__AGING_STEP": "1", "GAMEAD_WORKER__MAX_ATTEMPTS": "2",
       "GAMEAD_WORKER__BACKOFF_BASE": "0.1", "GAMEAD_WORKER__BACKOFF_CAP": "0.2"}
FLAKY = {"GAMEAD_WORKER__FAULTS__RATE": "1", "GAMEAD_WORKER__FAULTS__MATCH": "^flaky",
         "GAMEAD_WORKER__FAULTS__MODE": "retryable"}


def skewed_worker(nats_url: str, root: Path, worker_id: str, skew: float, concurrency: int = 1, **env: str) -> Proc:
    """``gamead worker`` whose host clock reads ``skew`` seconds off (negative: behind), once ready."""
    proc = Proc(worker_id, [sys.executable, SKEWED, str(skew), "worker", "--id", worker_id, "--concurrency",
                            str(concurrency)], clean_env(GAMEAD_NATS__URL=nats_url, **{**ENV, **env}),
                root / f"worker-{worker_id}.log").start()
    wait_worker_ready(proc)
    return proc


def _at(record: dict[str, Any], field: str) -> datetime:
    return datetime.fromisoformat(str(record[field]).replace("Z", "+00:00"))


def _age(http: httpx.Client, ad_id: str) -> float:
    """Seconds since ``ad_id`` was submitted (this host's clock is nats-server's: one machine)."""
    return (datetime.now(UTC) - _at(http.get(f"/ads/{ad_id}").json(), "submittedAt")).total_seconds()


def _wait_ms(http: httpx.Client) -> dict[str, Any]:
    """``/v1/stats`` ``latency.queueWaitMs`` once the workers' beats report ``count`` samples (at least 1)."""
    return wait_for(lambda: (lambda w: w if w.get("count") else None)(
        http.get("/v1/stats").json()["latency"]["queueWaitMs"]), timeout=20, what="queue-wait samples")


def test_a_worker_five_minutes_behind_ages_measures_waits_and_dates_its_dead_on_the_servers_clock(
    fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path
) -> None:
    """F2: with its clock 5 min behind, every ad younger than 5 min aged 0 on the worker: an old P5 ad ran after
    every newer P1 ad (pure strict priority). F9: its queue-wait p95 read 0 for a 6 s wait. F7: it dated its dead
    5 min back, so ``dlq list --since 2m`` missed an ad dead seconds ago. Here its buffer (prefetch) holds them all
    at once, so the order is the worker's own aging."""
    server = fresh_nats()
    api, url = start_api(server.url, tmp_path, **ENV)
    procs.append(api)
    with httpx.Client(base_url=url, timeout=10) as http:
        old = http.post("/ads", json=ad("old p5", priority=5)).json()["id"]
        wait_for(lambda: _age(http, old) > 6.0, timeout=20, what="the P5 ad waiting over (5-1) aging steps + 2 s")
        new = [http.post("/ads", json=ad(f"new p1 {i}", priority=1)).json()["id"] for i in range(6)]
        flaky = http.post("/ads", json=ad("flaky behind", priority=1)).json()["id"]
        procs.append(skewed_worker(server.url, tmp_path, "wbehind", -300.0, GAMEAD_WORKER__PREFETCH="20",
                                   GAMEAD_WORKER__PREFETCH_WAIT="0", GAMEAD_ANALYSIS__SIMULATED_LATENCY_MS="50",
                                   **FLAKY))
        records = {ad_id: wait_terminal(http, ad_id, timeout=30) for ad_id in [old, *new, flaky]}
        assert [records[i]["status"] for i in [old, *new]] == ["completed"] * 7, records
        first_p1 = min(_at(records[i], "startedAt") for i in new)
        # README's bound: it waited over (5-1) × aging_step more than each P1 ad: served before every one
        assert _at(records[old], "startedAt") < first_p1, (records[old], first_p1)  # before: after all 6
        waited = (_at(records[old], "startedAt") - _at(records[old], "submittedAt")).total_seconds()
        assert waited > 6.0, records[old]
        wait = _wait_ms(http)
        # before: 0.0 (every wait negative, clamped). p95 of 7 waits is the longest one, estimated inside its histogram
        # bucket (9.9 s read 8.2 s in [5 s, 10 s]): the bucket holds the measured wait and the worker saw it as longest
        lo, hi = wait["estimate"]["bucketMs"]["p95"]
        assert lo <= waited * 1000 * 1.1 and (hi is None or waited * 1000 * 0.9 <= hi) and lo <= wait["p95"], wait
        assert waited * 1000 * 0.9 <= wait["estimate"]["observedMs"][1] < 120_000, wait

        assert records[flaky]["status"] == "dead", records[flaky]
        since = (datetime.now(UTC) - timedelta(minutes=2)).isoformat()
        listed = http.get("/v1/dlq", params={"since": since}).json()
        assert [e["adId"] for e in listed["items"]] == [flaky], listed  # before: none (dead "5 min ago")
        entry = listed["items"][0]
        for field in ("firstFailureAt", "lastFailureAt", "deadAt"):
            assert _at(entry, "submittedAt") <= _at(entry, field) <= datetime.now(UTC), (field, entry)


def test_a_dlq_export_of_what_a_worker_ten_minutes_fast_wrote_imports_back(
    fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path
) -> None:
    """F8: a worker 10 min fast dated its dead 10 min ahead, and the service's own export was refused at import
    ("is in the future … no ad died then", nothing imported). F9: its ads' queue-wait p95 read 600 s on an idle
    system. Now its entries import back; a time truly ahead of nats-server's clock is still refused, naming the
    time and the API's now, without blaming the ad."""
    server = fresh_nats()
    api, url = start_api(server.url, tmp_path, **ENV)
    procs.append(api)
    procs.append(skewed_worker(server.url, tmp_path, "wahead", 600.0, concurrency=2, **FLAKY))
    with httpx.Client(base_url=url, timeout=10) as http:
        ids = [http.post("/ads", json=ad(title, priority=2)).json()["id"] for title in ("flaky ahead", "a1", "a2")]
        records = [wait_terminal(http, ad_id, timeout=30) for ad_id in ids]
        assert [r["status"] for r in records] == ["dead", "completed", "completed"], records
        wait = _wait_ms(http)
        assert wait["p95"] < 60_000, wait  # before: 600,000 (the worker's clock minus the API's)

        exported = http.get("/v1/dlq").json()["items"]
        assert [e["adId"] for e in exported] == [ids[0]], exported
        back = http.post("/v1/dlq/import", json={"entries": exported, "dryRun": True})
        assert back.status_code in (200, 202), back.text  # before: 422 firstFailureAt "is in the future"

        ahead = (datetime.now(UTC) + timedelta(minutes=10)).isoformat()
        refused = http.post("/v1/dlq/import", json={"entries": [{**exported[0], "deadAt": ahead}], "dryRun": True})
        assert refused.status_code == 422, refused.text
        text = refused.text
        assert "after the API's now" in text and "300 s allowed" in text and "no ad died then" not in text, text


REPORT = r"dead API \S+: (\d+) record\(s\) without a message queued again, (\d+) had theirs"


def test_the_reaper_judges_a_dead_apis_records_on_the_servers_clock_whatever_the_hosts_say(
    fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path
) -> None:
    """F4: the reaper on a worker 5 min behind judged a dead API's records young by its own clock and published
    again the messages of ads the API had published, past JetStream's duplicate window: stored twice, analysed
    twice. Here an API publishes an ad whose record then ages past ``queue.duplicate_window`` (35 s) while the
    only worker is busy, and is killed: the reaper leaves it alone (one message). Then an API whose host is 5 min
    ahead dies just after a submit: its read of the dead API's records started at the API's own ``startedAt``
    (5 min in the future: nothing read, F12's blind spot); now it finds the record (its message had landed)."""
    server = fresh_nats()
    env = {**ENV, "GAMEAD_QUEUE__DUPLICATE_WINDOW": "35"}
    api, url = start_api(server.url, tmp_path, **env)
    procs.append(api)
    reaper = skewed_worker(server.url, tmp_path, "wreaper", -300.0, GAMEAD_QUEUE__DUPLICATE_WINDOW="35",
                           GAMEAD_WORKER__PREFETCH="0", GAMEAD_ANALYSIS__SIMULATED_LATENCY_MS="120000",
                           GAMEAD_WORKER__TASK_TIMEOUT="300", GAMEAD_WORKER__DRAIN_TIMEOUT="1")
    procs.append(reaper)
    wait_for(lambda: "acquired the reaper lease" in reaper.output(), timeout=30, what="the reaper lease taken")
    with httpx.Client(base_url=url, timeout=10) as http:
        busy = http.post("/ads", json=ad("keeps the worker busy")).json()["id"]
        wait_for(lambda: http.get(f"/ads/{busy}").json()["status"] == "processing", timeout=20, what="busy")
        waiting = http.post("/ads", json=ad("published, then waits")).json()["id"]
        wait_for(lambda: _age(http, waiting) > 37.0, timeout=60, what="its record past the duplicate window")
        assert http.get(f"/ads/{waiting}").json()["status"] == "queued"
    api.kill()
    line = wait_for(lambda: re.search(REPORT, reaper.output()), timeout=30, what="the reaper's report on the API")
    assert line.group(1) == "0", line.group(0)  # before: 1, its second message stored
    assert on_js(server.url, _messages) == 2, "a work message published twice"  # the busy ad's, the waiting one's

    ahead, url = on_a_free_port(lambda port: serve_ready(
        Proc("api-ahead", [sys.executable, SKEWED, "300", "serve", "--port", str(port)],
             clean_env(GAMEAD_NATS__URL=server.url, **env), tmp_path / f"api-ahead-{port}.log"), port))
    procs.append(ahead)
    seen = reaper_lease_revision(server.url)
    wait_for(lambda: reaper_lease_revision(server.url) >= seen + 2, timeout=30, what="two reaper rounds seeing it alive")
    with httpx.Client(base_url=url, timeout=10) as http:
        assert http.post("/ads", json=ad("through a fast API")).status_code == 202
    ahead.kill()
    second = wait_for(lambda: (lambda found: found[1] if len(found) > 1 else None)(re.findall(REPORT, reaper.output())),
                      timeout=30, what="the reaper's report on the API 5 min ahead")
    assert second == ("0", "1"), second  # before: ("0", "0"): its records never read


def _messages(js: Any) -> Any:
    async def count() -> int:
        return int((await js.stream_info(names.work_stream(0))).state.messages)

    return count()
