"""Issue 11 item 3: every operator action is in the audit trail: when, who (token name, role, client address),
what selection, how many ads, how it went; stored in JetStream with a retention limit, read with
``GET /v1/audit`` and ``gamead audit``, and an action whose record cannot be written is not done.

One stack of the module's own (a nats-server, an API with tokens of every role, a worker); each test acts as its
own operator token, so the records of one test never count in another's.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import nats
import pytest
from typer.testing import CliRunner

from gamead_cli.tui.view_audit import audit_selection
from gamead_core import names
from gamead_core.config import load_settings
from gamead_core.embedded import EmbeddedNats
from gamead_core.queue.topology import ensure_topology
from tests.integration.dlq_lane import made_up_entry
from tests.support import Proc, start_api, start_worker, wait_for

TOKENS = {  # name → (token, role)
    "alice": ("alice-operator-token", "operator"),
    "bob": ("bob-operator-token", "operator"),
    "carol": ("carol-operator-token", "operator"),
    "dave": ("dave-operator-token", "operator"),
    "erin": ("erin-operator-token", "operator"),
    "frank": ("frank-operator-token", "operator"),
    "gina": ("gina-operator-token", "operator"),
    "hank": ("hank-operator-token", "operator"),
    "wall": ("wall-viewer-token", "viewer"),
    "kiosk": ("kiosk-viewer-token", "viewer"),
    "ci": ("ci-submitter-token", "submitter"),
}
ENV = {
    "GAMEAD_JOBS__FOLLOW_TIMEOUT": "10",
    "GAMEAD_JOBS__LEASE": "2",
    "GAMEAD_QUEUE__IDLE_POLL": "0.1",
    "GAMEAD_API__TOPOLOGY_CHECK_INTERVAL": "60",  # the fail-closed test deletes the stream: no healing meanwhile
    "GAMEAD_AUDIT__MAX_MSGS": "5000",
    "GAMEAD_AUDIT__MAX_AGE": "86400",
    "GAMEAD_AUDIT__REFUSALS_PER_MINUTE": "3",
}


class Stack:
    def __init__(self, url: str, nats_url: str, api: Proc) -> None:
        self.url, self.nats_url, self.api = url, nats_url, api

    def as_(self, name: str, **kw: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=15,
                            headers={"Authorization": f"Bearer {TOKENS[name][0]}"}, **kw)

    def trail(self, **params: Any) -> list[dict[str, Any]]:
        with self.as_("wall") as c:
            resp = c.get("/v1/audit", params={"limit": 500, **params})
        assert resp.status_code == 200, resp.text
        return list(resp.json()["items"])

    def job_end(self, job_id: str, timeout: float = 30) -> dict[str, Any]:
        with self.as_("wall") as c:
            return wait_for(lambda: (j := c.get(f"/v1/jobs/{job_id}").json()).get("finishedAt") and j,
                            timeout=timeout, what=f"job {job_id} to end")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("audit")
    server = EmbeddedNats(root / "nats").start()
    tokens = json.dumps([{"name": n, "token": t, "role": r} for n, (t, r) in TOKENS.items()])
    procs: list[Proc] = []
    try:
        api, url = start_api(server.url, root, GAMEAD_AUTH__TOKENS=tokens, **ENV)
        procs.append(api)
        procs.append(start_worker(server.url, root, worker_id="audit-worker", concurrency=4, **ENV))
        yield Stack(url, server.url, api)
    finally:
        for proc in reversed(procs):
            proc.stop(timeout=10)
        server.stop()


def test_a_replay_is_recorded_when_accepted_and_when_it_ends_with_who_what_and_how_many(stack: Stack) -> None:
    entries = [made_up_entry(f"Audited {n}") for n in range(3)]
    with stack.as_("alice") as alice:
        imported = alice.post("/v1/dlq/import", json={"entries": entries})
        assert imported.status_code == 202, imported.text
        stack.job_end(imported.json()["id"])
        ids = [e["adId"] for e in entries]
        replay = alice.post("/v1/dlq/replay", json={"ids": ids}, headers={"X-Request-Id": "change-4711"})
        assert replay.status_code == 202 and replay.headers["x-request-id"] == "change-4711"
        job_id = replay.json()["id"]
        assert stack.job_end(job_id)["state"] == "succeeded"

    end, start = wait_for(lambda: len(r := stack.trail(jobId=job_id)) == 2 and r, what="both records of the job")
    assert start["action"] == end["action"] == "replay"
    assert start["outcome"] == "accepted" and start["requestId"] == "change-4711"
    assert (start["actor"], start["role"], start["client"]) == ("alice", "operator", "127.0.0.1")
    assert start["selection"]["mode"] == "ids" and start["selection"]["ids"] == 3 and start["ads"] == 3
    assert end["outcome"] == "succeeded" and end["actor"] == "alice"
    assert end["ads"] == 3 and end["counts"]["replayed"] == 3 and end["counts"]["matched"] == 3
    assert start["at"] <= end["at"] and end["seq"] > start["seq"]
    imports = stack.trail(actor="alice", action="import")
    assert [r["outcome"] for r in imports] == ["succeeded", "accepted"] and imports[1]["ads"] == 3


def test_refusals_cancels_and_overrides_are_recorded_and_dry_runs_and_unknown_callers_are_not(stack: Stack) -> None:
    with stack.as_("wall") as wall:
        assert wall.post("/v1/dlq/purge", json={"all": True, "confirm": True}).status_code == 403

    def audit_line() -> dict[str, Any] | None:
        lines = [json.loads(line) for line in stack.api.output().splitlines() if line.startswith("{")]
        return next((r for r in lines if r.get("logger") == "gamead.audit" and r.get("actor") == "wall"), None)

    # attack29a F8: the JSON log line keeps the process's role; the caller's is actor_role
    line = wait_for(audit_line, what="the audit log line of wall's refused purge")
    assert (line["role"], line["actor_role"]) == ("api", TOKENS["wall"][1]), line
    with httpx.Client(base_url=stack.url, timeout=5) as nobody:
        assert nobody.post("/v1/dlq/purge", json={"all": True, "confirm": True}).status_code == 401
    with stack.as_("alice") as alice:
        before = len(stack.trail(actor="alice"))
        assert alice.post("/v1/dlq/replay", json={"all": True, "dryRun": True}).status_code == 200
        assert alice.post("/v1/dlq/purge", json={"all": True}).status_code == 400  # no confirm
        assert alice.post("/v1/scale/override", json={"replicas": False, "forSeconds": 60}).status_code == 422
        assert alice.get("/v1/scale").json()["override"] is None  # the refused override was not set
        assert alice.post("/v1/scale/override", json={"replicas": 2, "forSeconds": 60}).status_code == 201
        assert alice.delete("/v1/scale/override").status_code == 200
        assert alice.delete("/v1/scale/override").json()["cleared"] is False  # nothing stood: a no-op clear
        entries = [made_up_entry(f"Slow {n}") for n in range(6)]
        imported = alice.post("/v1/dlq/import", json={"entries": entries}).json()
        stack.job_end(imported["id"])
        slow = alice.post("/v1/dlq/replay", json={"ids": [e["adId"] for e in entries], "rate": 1}).json()
        assert alice.post(f"/v1/jobs/{slow['id']}/cancel").status_code == 202
        assert stack.job_end(slow["id"])["state"] == "cancelled"
        assert alice.post(f"/v1/jobs/{imported['id']}/cancel").status_code == 409  # it had ended

    refused = stack.trail(actor="wall", outcome="refused")
    assert refused[0]["action"] == "purge" and refused[0]["code"] == "forbidden" and refused[0]["role"] == "viewer"
    assert not stack.trail(actor="anonymous")  # a caller without a valid token is logged, not recorded
    mine = [(r["action"], r["outcome"], r.get("code")) for r in reversed(stack.trail(actor="alice"))][before:]
    assert mine[:3] == [  # the dry run, first, left no record
("purge", "refused", "confirmation_required"), ("scale.set", "refused", "validation_failed"),
                        ("scale.set", "accepted", None)]
    assert ("scale.clear", "accepted", None) in mine and ("job.cancel", "accepted", None) in mine
    assert ("job.cancel", "refused", "job_finished") in mine
    # regress39 F2: the refused cancel names its job, so `gamead audit --job ID` lists it (its jobId was null)
    assert [r["outcome"] for r in stack.trail(jobId=imported["id"], action="job.cancel")] == ["refused"]
    cancelled = wait_for(lambda: stack.trail(jobId=slow["id"], outcome="cancelled"), what="the cancelled job's end")
    assert cancelled[0]["counts"]["replayed"] < 6 and "cancelled by alice" in cancelled[0]["message"]
    override = stack.trail(action="scale.set", outcome="accepted")[0]
    assert override["details"] == {"replicas": 2, "forSeconds": 60.0, "effectiveReplicas": 2, "minReplicas": 1,
                                   "maxReplicas": 20}
    # attack39a F3: a clear names what it removed, and a no-op clear says nothing stood (both read alike before)
    noop, removed = stack.trail(actor="alice", action="scale.clear")[:2]
    assert noop["details"] == {"removes": None} and removed["details"]["removes"]["replicas"] == 2, (noop, removed)
    assert audit_selection(noop) == "none stood" and audit_selection(removed) == \
        "removing an override of 2 workers (by alice)"


def test_a_clamped_override_is_recorded_with_the_count_that_held_and_the_bound(
        stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    """attack25d #12: ``gamead scale set 50`` (max_replicas 20) printed "override 50 clamped to 20 (max_replicas)"
    while the trail recorded ``replicas 50 … accepted``: now it records the asked and the held count and the
    bounds, and ``gamead audit`` says it was clamped."""
    with stack.as_("frank") as frank:  # no other test acts as frank
        answer = frank.post("/v1/scale/override", json={"replicas": 50, "forSeconds": 60})
        assert answer.status_code == 201 and answer.json()["effectiveReplicas"] == 20
        assert frank.delete("/v1/scale/override").status_code == 200
    (record,) = stack.trail(actor="frank", action="scale.set")
    assert record["details"] == {"replicas": 50, "forSeconds": 60.0, "effectiveReplicas": 20, "minReplicas": 1,
                                 "maxReplicas": 20}
    from gamead_cli.main import app

    monkeypatch.setenv("GAMEAD_TOKEN", TOKENS["wall"][0])
    monkeypatch.setenv("GAMEAD_API_URL", stack.url)
    result = CliRunner().invoke(app, ["audit", "--actor", "frank", "--action", "scale.set"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "replicas 50 for 1m00s, clamped to 20 (max_replicas 20)" in result.stdout


def test_an_override_that_lost_its_compare_and_set_is_not_listed_as_accepted(stack: Stack) -> None:
    """attack26 F5: a ``scale set`` that lost its compare-and-set (409) was recorded ``accepted`` (written before
    acting) and then ``failed``, so ``gamead audit --outcome accepted`` listed an override that never happened.
    The trail keeps both records as written; ``outcome=accepted`` leaves out an accepted record its own request's
    failure undid."""
    with stack.as_("gina") as gina:  # no other test acts as gina
        seen = gina.get("/v1/scale").json()["overrideRevision"]
        assert gina.post("/v1/scale/override", json={"replicas": 2, "forSeconds": 60}).status_code == 201
        lost = gina.post("/v1/scale/override", json={"replicas": 4, "forSeconds": 60},
                         headers={"If-Match": f'"{seen}"'})
        assert lost.status_code == 409, lost.text
        assert gina.delete("/v1/scale/override").status_code == 200
    whole = stack.trail(actor="gina", action="scale.set")
    assert sorted(r["outcome"] for r in whole) == ["accepted", "accepted", "failed"], whole
    accepted = stack.trail(actor="gina", action="scale.set", outcome="accepted")
    assert [r["details"]["replicas"] for r in accepted] == [2], accepted



def test_an_accepted_override_stays_listed_when_a_later_request_reusing_its_request_id_fails(stack: Stack) -> None:
    """review26 F5/F6: ``outcome=accepted`` left out every accepted record whose X-Request-Id (the client's, often
    a shared correlation id) a later failure carried, hiding an override that was carried out. Now a failure names
    the sequence of its own request's accepted record (``undoes``) and only that one is left out, on any page."""
    with stack.as_("hank") as hank:  # no other test acts as hank
        same = {"X-Request-Id": "pipeline-step-7"}
        seen = hank.get("/v1/scale").json()["overrideRevision"]
        assert hank.post("/v1/scale/override", json={"replicas": 2, "forSeconds": 60}, headers=same).status_code == 201
        lost = hank.post("/v1/scale/override", json={"replicas": 4, "forSeconds": 60},
                         headers={**same, "If-Match": f'"{seen}"'})
        assert lost.status_code == 409, lost.text
        assert hank.delete("/v1/scale/override").status_code == 200
    whole = stack.trail(actor="hank", action="scale.set")
    failed, undone, done = whole  # newest first
    assert [r["outcome"] for r in whole] == ["failed", "accepted", "accepted"], whole
    assert [r["seq"] for r in stack.trail(actor="hank", action="scale.set", outcome="accepted")] == [done["seq"]]
    assert failed["undoes"] == undone["seq"] and "undoes" not in done, whole
    # a page starting between the failure and the record it undoes still leaves that record out
    page = stack.trail(actor="hank", action="scale.set", outcome="accepted", cursor=failed["seq"])
    assert [r["seq"] for r in page] == [done["seq"]], page
    with stack.as_("wall") as wall:  # a cursor past the end: an empty page, at once
        past = wall.get("/v1/audit", params={"outcome": "accepted", "actor": "hank", "action": "scale.set",
                                             "cursor": failed["seq"] + 10**6})
    assert past.status_code == 200 and [r["seq"] for r in past.json()["items"]] == [done["seq"]], past.text

def test_the_trail_is_paged_newest_first_filtered_and_kept_within_its_limits(stack: Stack) -> None:
    with stack.as_("carol") as carol:
        for n in range(7):
            assert carol.post("/v1/scale/override", json={"replicas": n, "forSeconds": 60}).status_code == 201
        with stack.as_("wall") as wall:
            first = wall.get("/v1/audit", params={"actor": "carol", "limit": 3}).json()
            assert [r["details"]["replicas"] for r in first["items"]] == [6, 5, 4] and first["complete"]
            second = wall.get("/v1/audit", params={"actor": "carol", "limit": 3, "cursor": first["nextCursor"]}).json()
            assert [r["details"]["replicas"] for r in second["items"]] == [3, 2, 1]
            since = first["items"][2]["at"]
            assert [r["details"]["replicas"] for r in stack.trail(actor="carol", since=since)] == [6, 5, 4]
            assert len(stack.trail(actor="carol", until=since)) == 4
            for params in ({"action": "nope"}, {"actor": "a b"}, {"actor": "x" * 65}, {"jobId": "x"},
                           {"since": "0.5"}, {"outcome": "won"}, {"limit": 0}, {"cursor": -1}, {"cursor": 2**63}):
                resp = wall.get("/v1/audit", params=params)
                assert resp.status_code == 422 and resp.json()["error"]["code"] == "validation_failed", params
        assert carol.delete("/v1/scale/override").status_code == 200

    async def stream_config() -> Any:
        nc = await nats.connect(stack.nats_url)
        try:
            return (await nc.jetstream().stream_info(names.AUDIT_STREAM)).config
        finally:
            await nc.close()

    config = asyncio.run(stream_config())  # retention from audit.*: the oldest records go first
    assert (config.max_msgs, config.max_age, config.max_bytes) == (5000, 86400, -1)
    assert getattr(config.discard, "value", config.discard) == "old" and config.subjects == ["gamead.audit.>"]


def test_a_body_over_the_cap_is_recorded_with_its_caller_and_code(stack: Stack) -> None:
    """A 413 for a declared body over ``api.max_body_bytes`` comes before authentication: it was not in the
    trail. Now it is, with the caller's token and the code it got; an unknown token's 413 still is not."""
    from gamead_core.api.body_caps import ID_LIST_BODY  # the purge route's cap: room for its ids (attack44 F2)

    big = b'{"all": true, "confirm": true, "pad": "' + b"x" * ID_LIST_BODY + b'"}'
    with stack.as_("erin") as erin:  # no other test acts as erin
        assert erin.post("/v1/dlq/purge", content=big).status_code == 413
    with httpx.Client(base_url=stack.url, timeout=5, headers={"Authorization": "Bearer not-a-token"}) as nobody:
        assert nobody.post("/v1/dlq/purge", content=big).status_code == 413
    refused = wait_for(lambda: stack.trail(actor="erin", outcome="refused"), what="erin's 413 in the trail")
    assert (refused[0]["action"], refused[0]["code"], refused[0]["role"]) == ("purge", "payload_too_large", "operator")
    assert not stack.trail(actor="anonymous")


def test_refusals_are_recorded_up_to_a_rate_per_caller(stack: Stack) -> None:
    """``audit.refusals_per_minute`` (3 here): a caller hammering a refused route cannot flood the trail."""
    with stack.as_("kiosk") as kiosk:
        for _ in range(8):
            assert kiosk.post("/v1/dlq/purge", json={"all": True, "confirm": True}).status_code == 403
    assert len(stack.trail(actor="kiosk")) == 3


def test_whoami_tells_the_caller_its_role_and_gamead_audit_prints_the_trail(stack: Stack,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    for name, may_act in (("wall", False), ("alice", True)):
        with stack.as_(name) as c:
            me = c.get("/v1/whoami").json()
        assert (me["name"], me["role"], me["mayAct"], me["authMode"]) == (name, TOKENS[name][1], may_act, "required")
    with stack.as_("ci") as ci:
        me = ci.get("/v1/whoami").json()  # every role may ask who it is (task C5: was 403 for a submitter)
        assert (me["name"], me["role"], me["mayAct"]) == ("ci", "submitter", False)

    from gamead_cli.main import app

    monkeypatch.setenv("GAMEAD_TOKEN", TOKENS["wall"][0])
    monkeypatch.setenv("GAMEAD_API_URL", stack.url)
    with stack.as_("wall") as wall:  # its own refusal to print: the test stands alone (pytest -k whoami)
        assert wall.post("/v1/dlq/purge", json={"all": True, "confirm": True}).status_code == 403
    with stack.as_("dave") as dave:
        assert dave.post("/v1/scale/override", json={"replicas": 1, "forSeconds": 30}).status_code == 201
        assert dave.delete("/v1/scale/override").status_code == 200
    runner = CliRunner()
    result = runner.invoke(app, ["audit", "--actor", "dave", "--action", "scale.set", "-o", "json"])
    assert result.exit_code == 0, result.output
    records = json.loads(result.stdout)["items"]
    assert [(r["actor"], r["action"], r["details"]["replicas"]) for r in records] == [("dave", "scale.set", 1)]
    result = runner.invoke(app, ["audit", "--actor", "wall", "--limit", "1"])
    assert result.exit_code == 0 and "purge" in result.stdout and "refused forbidden" in result.stdout
    assert "1 record(s), newest first" in result.stdout
    result = runner.invoke(app, ["audit", "--since", "yesterday"])
    assert result.exit_code == 2 and "--since" in result.stderr


def test_the_dashboard_turns_read_only_for_a_viewer_token_and_shows_the_trail(stack: Stack) -> None:
    from gamead_cli.client import ApiClient
    from gamead_cli.tui.app import DashboardApp
    from gamead_cli.tui.source import ApiSource
    from tests.tui.conftest import screen_text, until

    async def main() -> None:
        with ApiClient(stack.url, token=TOKENS["wall"][0], timeout=5) as client:
            app = DashboardApp(ApiSource(client), refresh=0.5)
            async with app.run_test(size=(120, 40)) as pilot:
                await until(pilot, lambda: app.readonly and (app.audit or {}).get("items"), timeout=15,
                            what="read-only mode and the trail on screen")
                await pilot.pause()
                text = screen_text(app)
                assert "READ-ONLY" in text.splitlines()[0] and "audit · last operator actions" in text
                assert "r replay" not in text.splitlines()[-1]

    asyncio.run(main())


def test_an_action_whose_record_cannot_be_written_is_not_done(stack: Stack) -> None:
    """Fail closed: without stream GAMEAD_AUDIT, 503 ``audit_unavailable``, no override and no job. (Last in the
    module: it deletes the trail.)"""
    async def delete_stream() -> None:
        nc = await nats.connect(stack.nats_url)
        try:
            await nc.jetstream().delete_stream(names.AUDIT_STREAM)
        finally:
            await nc.close()

    with stack.as_("bob") as bob:
        jobs_before = bob.get("/v1/jobs").json()["count"]
        asyncio.run(delete_stream())
        resp = bob.post("/v1/scale/override", json={"replicas": 3, "forSeconds": 60})
        assert resp.status_code == 503 and resp.json()["error"]["code"] == "audit_unavailable", resp.text
        assert "nothing was done" in resp.json()["error"]["message"] and resp.headers["retry-after"]
        assert bob.get("/v1/scale").json()["override"] is None
        resp = bob.post("/v1/dlq/replay", json={"all": True})
        assert resp.status_code == 503 and resp.json()["error"]["code"] == "audit_unavailable"
        assert bob.get("/v1/jobs").json()["count"] == jobs_before

        async def recreate() -> None:  # what every worker and API node does (the API's watch, within its interval)
            nc = await nats.connect(stack.nats_url)
            try:
                await ensure_topology(nc.jetstream(), load_settings(None, audit={"max_msgs": 5000, "max_age": 86400}))
            finally:
                await nc.close()

        asyncio.run(recreate())
        assert bob.post("/v1/scale/override", json={"replicas": 3, "forSeconds": 60}).status_code == 201
        assert bob.delete("/v1/scale/override").status_code == 200
    assert [r["action"] for r in stack.trail(actor="bob")] == ["scale.clear", "scale.set"]
