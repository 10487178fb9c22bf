"""``gamead workers quiet ID`` / ``resume ID`` (quiet48): on a NATS of their own, a real API and real workers.

A quiet worker finishes the ad it runs, takes none of the ads submitted next (its fellow runs them all, each
completed once), shows ``quiet`` in ``gamead workers`` (table and JSON), ``top --once``, ``/v1/stats`` and
``gamead_workers{state="quiet"}``, and ``gamead doctor`` finds nothing wrong. Its long polls live 120 s here
(``queue.idle_wait``): a resume that left them as they were before the quiet took the urgent ad only once they
expired; resumed, it takes it at once. A NATS restart leaves it quiet, and so does its restart under its id after a
kill -9. An id no worker answers for is 404 ``worker_not_live`` (CLI exit 4), one that is no worker id 404
``not_found``; each request is in the audit trail.
"""

from __future__ import annotations

import json
import shlex
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from gamead_core.embedded import EmbeddedNats
from tests.support import Proc, ad, clean_env, run_gamead, start_api, start_worker, wait_for, wait_terminal

#: every analysis takes 1.5 s: the quiet worker still runs its ad when told
SLOW = {"GAMEAD_ANALYSIS__SIMULATED_LATENCY_MS": "1500", "GAMEAD_REGISTRY__HEARTBEAT_INTERVAL": "0.5"}
#: and long polls that live ~120 s (their life is bound by registry.ttl too: gamead_core.worker.idle.poll_life)
LONG_POLLS = {**SLOW, "GAMEAD_QUEUE__IDLE_WAIT": "120", "GAMEAD_REGISTRY__TTL": "120"}


def _worker(http: httpx.Client, worker_id: str) -> dict[str, Any] | None:
    items = http.get("/v1/workers", params={"role": "worker"}).json().get("items") or []
    return next((n for n in items if n.get("id") == worker_id), None)


def _record(http: httpx.Client, ad_id: str) -> dict[str, Any]:
    return http.get(f"/ads/{ad_id}").json()  # type: ignore[no-any-return]


def test_a_quiet_worker_finishes_its_ad_takes_no_new_one_and_resumed_takes_an_urgent_one_at_once(
    fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path
) -> None:
    server = fresh_nats()
    api, url = start_api(server.url, tmp_path)
    procs.append(api)
    quiet = start_worker(server.url, tmp_path, worker_id="quiet-1", concurrency=2, ready=True, **LONG_POLLS)
    procs.append(quiet)
    env = clean_env(GAMEAD_API_URL=url)
    with httpx.Client(base_url=url, timeout=20) as http:
        first = http.post("/ads", json=ad("Running when told", priority=3)).json()["id"]
        wait_for(lambda: (_worker(http, "quiet-1") or {}).get("inFlight") == 1, timeout=15, what="quiet-1 runs it")
        told = run_gamead("workers", "quiet", "quiet-1", "-o", "json", env=env)
        assert told.returncode == 0, told.stderr
        assert '"quiet":true' in told.stdout.replace(" ", "") and '"inFlight":1' in told.stdout.replace(" ", "")
        # leftout59: one id's answer was the bare object, several ids' a document of items: one shape for scripts
        assert json.loads(told.stdout) == {"items": [{"workerId": "quiet-1", "quiet": True, "changed": True,
                                                      "inFlight": 1}], "notLive": [], "noAnswer": []}, told.stdout
        busy = start_worker(server.url, tmp_path, worker_id="busy-1", concurrency=2, ready=True, **LONG_POLLS)
        procs.append(busy)
        later = [http.post("/ads", json=ad(f"After the quiet {n}", priority=1 + n % 5)).json()["id"]
                 for n in range(6)]
        done = {ad_id: wait_terminal(http, ad_id, timeout=40) for ad_id in [first, *later]}
        assert {r["status"] for r in done.values()} == {"completed"}
        assert all(r["attempts"] == 1 for r in done.values())  # each completed once
        assert done[first]["workerId"] == "quiet-1"  # what it ran, it finished
        assert {done[a]["workerId"] for a in later} == {"busy-1"}  # before the fix: 2-3 of them ran on quiet-1
        entry = wait_for(lambda: _worker(http, "quiet-1"), what="quiet-1 listed")
        assert entry["state"] == "quiet" and entry["quiet"] is True and entry["inFlight"] == 0
        table = run_gamead("workers", env=env)
        assert table.returncode == 0 and "quiet" in table.stdout and "1 quiet" in table.stdout, table.stdout
        top = run_gamead("top", "--once", env={**env, "COLUMNS": "160"})
        assert top.returncode == 0 and " 1 quiet" in top.stdout and "quiet-1" in top.stdout, top.stdout
        scraped = http.get("/metrics").text
        assert 'gamead_workers{state="quiet"} 1.0' in scraped
        assert http.get("/v1/stats").json()["nodes"]["quiet"] == 1
        doctor = run_gamead("doctor", "--settle", "0", env=env, timeout=120)  # what quiet-1 held is settled
        assert doctor.returncode == 0, (doctor.stdout[-2000:], doctor.stderr[-2000:])

        busy.stop()  # only the quiet worker is left: the urgent ad waits for it
        urgent = http.post("/ads", json=ad("Urgent after resume", priority=1)).json()["id"]
        assert _record(http, urgent)["status"] == "queued"
        resumed = run_gamead("workers", "resume", "quiet-1", env=env)
        assert resumed.returncode == 0, resumed.stderr
        assert "quiet-1 resumed" in resumed.stdout
        # newcomer49: it said "shown as its state in gamead workers within a heartbeat" (which state?)
        assert "no longer shown as quiet in gamead workers within a heartbeat" in resumed.stdout, resumed.stdout
        # before the fix (long polls and their quiet spell kept across the quiet): taken ~120 s later
        record = wait_terminal(http, urgent, timeout=15)
        assert record["status"] == "completed" and record["workerId"] == "quiet-1"


def test_quiet_survives_a_nats_restart_and_unknown_ids_are_refused_and_audited(
    fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path
) -> None:
    server = fresh_nats()
    api, url = start_api(server.url, tmp_path)
    procs.append(api)
    quiet = start_worker(server.url, tmp_path, worker_id="quiet-2", concurrency=2, ready=True, **SLOW)
    busy = start_worker(server.url, tmp_path, worker_id="busy-2", concurrency=2, ready=True, **SLOW)
    procs.extend([quiet, busy])
    env = clean_env(GAMEAD_API_URL=url)
    with httpx.Client(base_url=url, timeout=20) as http:
        answer = http.post("/v1/workers/quiet-2/quiet")
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"workerId": "quiet-2", "quiet": True, "changed": True, "inFlight": 0}
        assert http.post("/v1/workers/quiet-2/quiet").json()["changed"] is False  # asked twice

        server.stop()
        server.start()  # the registry is a memory stream: it comes back empty, each worker beats into it again
        wait_for(lambda: (_worker(http, "quiet-2") or {}).get("quiet") is True
                 and http.get("/readyz").status_code == 200, timeout=30, what="quiet-2 beats again, quiet")
        ads = [http.post("/ads", json=ad(f"After NATS came back {n}", priority=2)).json()["id"] for n in range(4)]
        done = [wait_terminal(http, ad_id, timeout=40) for ad_id in ads]
        assert {(r["status"], r["workerId"], r["attempts"]) for r in done} == {("completed", "busy-2", 1)}

        gone = http.post("/v1/workers/nobody-here/quiet")
        assert gone.status_code == 404 and gone.json()["error"]["code"] == "worker_not_live"
        bad = http.post("/v1/workers/bad*id/resume")
        assert bad.status_code == 404 and bad.json()["error"]["code"] == "not_found"
        cli = run_gamead("workers", "quiet", "nobody-here", env=env)
        assert cli.returncode == 4 and cli.stdout == ""
        assert len(cli.stderr.strip().splitlines()) == 1 and "worker nobody-here is not live" in cli.stderr

        records = http.get("/v1/audit", params={"action": "worker.quiet"}).json()["items"]
        asked = [(r["outcome"], (r.get("details") or {}).get("workerId"), r.get("code")) for r in records]
        assert ("accepted", "quiet-2", None) in asked
        # newcomer56: the failed record names the worker too (before: None, so `gamead audit` showed its WHAT as -)
        assert ("failed", "nobody-here", "worker_not_live") in asked, asked
        assert ("accepted", "nobody-here", None) in asked

        quiet.kill()  # a crash: its entry stays (quiet) until the restart under its id takes it over
        again = start_worker(server.url, tmp_path, worker_id="quiet-2", concurrency=2, ready=True, **SLOW)
        procs.append(again)
        entry = wait_for(lambda: (e := _worker(http, "quiet-2")) and e["pid"] != quiet.pid and e["quiet"] and e,
                         timeout=20, what="the restarted quiet-2 quiet (without the restore: it takes ads)")
        assert entry["state"] == "quiet"
        after = http.post("/ads", json=ad("After the restart", priority=1)).json()["id"]
        record = wait_terminal(http, after, timeout=30)
        assert (record["status"], record["workerId"]) == ("completed", "busy-2")

        everyone = run_gamead("workers", "resume", "--all", "-o", "json", env=env)
        assert everyone.returncode == 0, everyone.stderr
        answers = {(a["workerId"], a["quiet"], a["changed"]) for a in json.loads(everyone.stdout)["items"]}
        assert answers == {("quiet-2", False, True), ("busy-2", False, False)}


def test_the_undo_of_quiet_all_runs_as_printed_and_keeps_the_worker_quiet_before(
    fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path
) -> None:
    """newcomer57: w-1 quiet for inspection, then `gamead workers quiet --all` printed `undo with: gamead workers
    resume ID --api … (ID: w-2, w-3; not --all: w-1 already was)`; pasted as printed it was exit 4 (`worker ID is
    not live`) and w-2 and w-3 stayed quiet. Now `resume w-2 w-3 --api …` (several ids, each told in turn) runs as
    printed: w-2 and w-3 take ads again, w-1 stays quiet. Several ids none of which is live: one red line, exit 4."""
    server = fresh_nats()
    api, url = start_api(server.url, tmp_path)
    procs.append(api)
    for n in (1, 2, 3):
        procs.append(start_worker(server.url, tmp_path, worker_id=f"w-{n}", concurrency=1, ready=True))
    env = clean_env(GAMEAD_API_URL=url)
    names = ("w-1", "w-2", "w-3")
    with httpx.Client(base_url=url, timeout=20) as http:
        wait_for(lambda: all(_worker(http, w) for w in names), what="three workers listed")
        assert run_gamead("workers", "quiet", "w-1", env=env).returncode == 0
        told = run_gamead("workers", "quiet", "--all", env=env)
        assert told.returncode == 0, told.stderr
        hint = [line for line in told.stdout.splitlines() if "undo with: " in line]
        assert len(hint) == 1 and hint[0].endswith(" (not --all: w-1 already was)"), told.stdout
        printed = shlex.split(hint[0].split("undo with: ", 1)[1].removesuffix(" (not --all: w-1 already was)"))
        assert printed[1:4] == ["workers", "resume", "w-2"] and printed[4] == "w-3", printed
        undone = run_gamead(*printed[1:], env=env)  # [0]: gamead as another terminal finds it
        assert undone.returncode == 0, (printed, undone.stderr)
        assert "w-2 resumed" in undone.stdout and "w-3 resumed" in undone.stdout, undone.stdout
        wait_for(lambda: {w: (_worker(http, w) or {}).get("quiet") for w in names}
                 == {"w-1": True, "w-2": False, "w-3": False}, timeout=20, what="w-2, w-3 resumed; w-1 quiet")
    # one live, one never was: w-2 told and said so, then exit 4 naming gone-3 (leftout58: exit 0, as if both were)
    mixed = run_gamead("workers", "quiet", "w-2", "gone-3", env=env)
    assert mixed.returncode == 4 and "w-2 is quiet" in mixed.stdout and "gone-3" not in mixed.stdout, mixed.stdout
    assert mixed.stderr.count("\n") == 1 and "quiet done for w-2, not for gone-3: worker gone-3 is not live: no " \
        "running worker answers for this id" in mixed.stderr, mixed.stderr
    as_json = run_gamead("workers", "resume", "w-2", "gone-3", "-o", "json", env=env)
    assert as_json.returncode == 4 and as_json.stderr.count("\n") == 1, as_json.stderr
    doc = json.loads(as_json.stdout)  # one document: the answers, the ids not done (no second, error document)
    assert [a["workerId"] for a in doc["items"]] == ["w-2"] and doc["notLive"] == ["gone-3"], as_json.stdout
    assert doc["items"][0]["quiet"] is False and doc["items"][0]["changed"] is True  # done: w-2 resumed
    nobody = run_gamead("workers", "resume", "gone-1", "gone-2", env=env)
    assert nobody.returncode == 4 and nobody.stdout == "", nobody.stderr
    assert nobody.stderr.count("\n") == 1 and "none of the workers gone-1, gone-2 is live" in nobody.stderr
    twice = run_gamead("workers", "resume", "w-2", "w-2", "-o", "json", env=env)  # a list with an id twice: told once,
    assert twice.returncode == 0, twice.stderr  # the shape of several named (attack57b: one id's bare answer)
    assert [a["workerId"] for a in json.loads(twice.stdout)["items"]] == ["w-2"], twice.stdout
    gone = run_gamead("workers", "resume", "gone-1", "gone-1", env=env)
    assert gone.returncode == 4 and "worker gone-1 is not live: no running worker answers for this id" in gone.stderr


def test_a_frozen_worker_is_not_said_stopped_it_may_still_go_quiet_when_it_wakes(
    fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path
) -> None:
    """probe49: SIGSTOP one worker, `gamead workers quiet --all`: "frozen-1: not live any more (it stopped
    meanwhile)", exit 0; SIGCONT, and frozen-1 read the request waiting in its socket and went quiet — stopped it
    was not, and the request was carried out. The lines now say it got no answer and may still go quiet."""
    server = fresh_nats()
    api, url = start_api(server.url, tmp_path, GAMEAD_REGISTRY__TTL="120")  # frozen-1 stays listed (not gone)
    procs.append(api)
    frozen = start_worker(server.url, tmp_path, worker_id="frozen-1", ready=True, **LONG_POLLS)
    awake = start_worker(server.url, tmp_path, worker_id="awake-1", ready=True, **LONG_POLLS)
    procs.extend([frozen, awake])
    env = clean_env(GAMEAD_API_URL=url)
    with httpx.Client(base_url=url, timeout=20) as http:
        wait_for(lambda: _worker(http, "frozen-1") and _worker(http, "awake-1"), what="both listed")
        frozen.signal(signal.SIGSTOP)
        try:
            one = run_gamead("workers", "quiet", "frozen-1", env=env)
            assert one.returncode == 4 and one.stdout == "", one.stderr
            assert "did not answer within" in one.stderr and "may still go quiet when it wakes" in one.stderr
            pair = run_gamead("workers", "quiet", "frozen-1", "gone-2", env=env)  # several named, none answered
            assert pair.returncode == 4 and pair.stdout == "", pair.stderr  # as one (attack57b: exit 0, done none)
            assert pair.stderr.count("\n") == 1 and "worker gone-2 is not live" in pair.stderr, pair.stderr
            assert "frozen-1 did not answer in time" in pair.stderr and "may still go quiet" in pair.stderr
            both = run_gamead("workers", "quiet", "frozen-1", "gone-2", "-o", "json", env=env)
            assert both.returncode == 4 and json.loads(both.stdout)["error"]["details"] == {
                "notLive": ["frozen-1", "gone-2"], "noAnswer": ["frozen-1"]}, both.stdout
            every = run_gamead("workers", "quiet", "--all", "-o", "json", env=env)
            # leftout59: exit 0, though quiet was not done for frozen-1; now the partial success of named ids: 4
            assert every.returncode == 4 and every.stderr.count("\n") == 1, every.stderr
            assert "quiet done for awake-1, not for frozen-1: frozen-1 did not answer in time" in every.stderr
            doc = json.loads(every.stdout)
            assert [a["workerId"] for a in doc["items"]] == ["awake-1"]
            assert doc["notLive"] == ["frozen-1"] and doc["noAnswer"] == ["frozen-1"]
            text = run_gamead("workers", "quiet", "--all", env=env)
            assert "frozen-1: no answer in time" in text.stdout and "stopped meanwhile" not in text.stdout, text.stdout
            assert text.returncode == 4 and text.stderr.count("\n") == 1, text.stderr
            assert "quiet done for awake-1, not for frozen-1 (each said above)" in text.stderr, text.stderr
        finally:
            frozen.signal(signal.SIGCONT)
        # it wakes, reads the requests that waited in its socket and carries them out: it goes quiet, as said
        wait_for(lambda: (_worker(http, "frozen-1") or {}).get("quiet") is True, timeout=30,
                 what="frozen-1 quiet once it woke")


def test_a_draining_worker_is_said_to_be_stopping_not_resumed(
    fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path
) -> None:
    """probe49 F7: a SIGTERMed worker finishing its ad (`draining 1/1` in `gamead workers`): `gamead workers resume`
    said `drain-1 resumed: it takes ads (1 ad running)`; it takes none, stopping. Its answer says it drains."""
    server = fresh_nats()
    api, url = start_api(server.url, tmp_path)
    procs.append(api)
    # 40 s: the resume below must reach it while it drains (at load 30, 15 s was too short: exit 4, it had ended)
    slow = {**SLOW, "GAMEAD_ANALYSIS__SIMULATED_LATENCY_MS": "40000", "GAMEAD_WORKER__DRAIN_TIMEOUT": "90"}
    worker = start_worker(server.url, tmp_path, worker_id="drain-1", ready=True, **slow)
    procs.append(worker)
    env = clean_env(GAMEAD_API_URL=url)
    with httpx.Client(base_url=url, timeout=20) as http:
        ad_id = http.post("/ads", json=ad("Running as it stops", priority=2)).json()["id"]
        wait_for(lambda: (_worker(http, "drain-1") or {}).get("inFlight") == 1, timeout=20, what="drain-1 runs it")
        worker.signal(signal.SIGTERM)
        wait_for(lambda: (_worker(http, "drain-1") or {}).get("state") == "draining", timeout=15, what="draining")
        back = run_gamead("workers", "resume", "drain-1", env=env)
        assert back.returncode == 0, back.stderr  # before: "drain-1 resumed: it takes ads (1 ad running)"
        said = " ".join(back.stdout.split())  # the line as read, wherever a narrow terminal folded it
        assert "drain-1 is stopping (draining): it takes no new ad, resumed or not (1 ad running)" in said
        assert "undo with" not in said  # attack55: its clean stop keeps nothing to undo
        assert http.post("/v1/workers/drain-1/quiet").json()["draining"] is True
        assert wait_terminal(http, ad_id, timeout=90)["status"] == "completed"  # what it ran, it finished


def test_a_worker_that_died_before_quiet_all_reached_it_is_said_to_take_ads_once_restarted(
    fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path
) -> None:
    """attack52: `gamead workers quiet --all` while a poison ad crash-loops `gamead up`'s workers: a worker listed
    live but dead when asked was said "not live any more (it stopped meanwhile)", exit 0; `gamead up` restarted it
    under its id a second later and it took ads, not quiet. The line now says it is not quiet, that one started
    again under its id takes ads, and gives the command that asks it again."""
    server = fresh_nats()
    api, url = start_api(server.url, tmp_path, GAMEAD_REGISTRY__TTL="120")  # the dead one stays listed
    procs.append(api)
    first = start_worker(server.url, tmp_path / "1", worker_id="crash-1", ready=True, **LONG_POLLS)
    procs.append(first)
    env = clean_env(GAMEAD_API_URL=url)
    with httpx.Client(base_url=url, timeout=20) as http:
        wait_for(lambda: _worker(http, "crash-1"), what="crash-1 listed")
        first.kill()  # as a crash would, its entry left behind
        wait_for(lambda: not first.alive(), timeout=10, what="crash-1 dead")
        told = run_gamead("workers", "quiet", "--all", env=env)
        # not done for crash-1, whose restart takes ads: a partial success, exit 4 as for named ids (leftout59: 0)
        assert told.returncode == 4 and told.stderr == "error: quiet not done for crash-1 (each said above)\n", \
            told.stderr
        said = " ".join(told.stdout.split())  # the line as read, wherever a narrow terminal folded it
        assert "crash-1: no process answered for it (it died or stopped meanwhile), not quiet: one started again " \
               "under its id takes ads" in said, said
        assert "workers quiet crash-1 --api" in said, said
        again = start_worker(server.url, tmp_path / "2", worker_id="crash-1", ready=True, **LONG_POLLS)  # restarted
        procs.append(again)
        entry = wait_for(lambda: (e := _worker(http, "crash-1")) and e["pid"] == again.pid and e, timeout=30,
                         what="the restarted crash-1 listed")
        assert entry["quiet"] is False and entry["state"] != "quiet", entry  # what the line said: it takes ads
        ad_id = http.post("/ads", json=ad("After the restart", priority=1)).json()["id"]
        assert wait_terminal(http, ad_id, timeout=30)["workerId"] == "crash-1"
