"""The running service heals its own JetStream topology (issue 9, item 3): a deleted stream, consumer or bucket
comes back within seconds, logged with its name and shown in /readyz and /v1/stats; an object that exists with a
config gamead cannot use is reported and never overwritten. Real nats-server, real API and worker processes."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
from nats.js.api import AckPolicy, ConsumerConfig, RetentionPolicy, StreamConfig

from gamead_core import names
from gamead_core.config import GameadSettings
from gamead_core.embedded import EmbeddedNats
from gamead_core.queue.topology import plan, read_topology, wanted_topology
from gamead_core.scaling.lease_rule import AUTOSCALER_LEASE, Lease
from tests.support import (
    Proc,
    ad,
    assert_doctor_clean,
    doctor_report,
    on_js,
    start_api,
    start_worker,
    wait_for,
    wait_terminal,
)

#: a topology check every 0.5 s; heartbeats rare, so that the check (which logs what it recreates) always finds a
#: deleted registry bucket before a heartbeat does (the registry recreates its own bucket on the next put)
FAST = {"GAMEAD_API__TOPOLOGY_CHECK_INTERVAL": "0.5", "GAMEAD_REGISTRY__HEARTBEAT_INTERVAL": "30",
        "GAMEAD_REGISTRY__TTL": "90"}
WANTED = wanted_topology(GameadSettings(registry={"heartbeat_interval": 30, "ttl": 90}))  # as FAST says


def not_ok(url: str) -> dict[str, str]:
    """Objects that are not as gamead creates them: label → state."""

    async def check(js: Any) -> dict[str, str]:
        return {v.wanted.label: v.state for v in plan(WANTED, await read_topology(js)) if v.state != "ok"}

    return on_js(url, check)  # type: ignore[no-any-return]


def readyz(client: httpx.Client) -> tuple[int, dict[str, Any]] | None:
    """(status, body) of /readyz; None while the API is not listening yet."""
    try:
        resp = client.get("/readyz")
    except httpx.TransportError:
        return None
    return resp.status_code, resp.json()


def log_lines(proc: Proc) -> list[dict[str, Any]]:
    return [json.loads(line) for line in proc.output().splitlines() if line.startswith("{")]


async def delete_everything(js: Any) -> None:
    for level in names.LEVELS:
        await js.delete_consumer(names.ADS_STREAM, names.level_consumer(level))
    for stream in (names.DLQ_STREAM, names.AUDIT_STREAM, names.ADS_STREAM):
        await js.delete_stream(stream)
    for bucket in (names.ADS_BUCKET, names.REGISTRY_BUCKET, names.LEASES_BUCKET, names.SCALING_BUCKET,
                   names.HEALTH_BUCKET, names.JOBS_BUCKET, names.STOPS_BUCKET):
        await js.delete_key_value(bucket)


@pytest.fixture(scope="module")
def lane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A NATS server of its own, an API that checks the topology every 0.5 s, and one worker (4 slots)."""
    logs = tmp_path_factory.mktemp("healing")
    server = EmbeddedNats(logs / "nats").start()
    api, url = start_api(server.url, logs, **FAST)
    worker = start_worker(server.url, logs, concurrency=4, ready=True, **FAST)  # its own topology check is done
    yield {"nats": server, "api": api, "url": url, "worker": worker}
    worker.stop()
    api.stop()
    server.stop()


def test_every_deleted_object_is_recreated_logged_and_shown(lane: dict[str, Any]) -> None:
    server, api, url = lane["nats"], lane["api"], lane["url"]
    assert not_ok(server.url) == {}
    on_js(server.url, delete_everything)  # as `nats consumer rm`, `nats stream rm`, `nats kv rm` would

    wait_for(lambda: not_ok(server.url) == {}, timeout=15, what=f"all {len(WANTED)} objects recreated")
    # the registry and leases buckets are also recreated by their own users (a heartbeat, a lease renewal), which
    # may come before the check: then the check finds them there (a full run's race); every other object is the
    # check's to recreate, log and show
    own = {w.label for w in WANTED if w.label.split()[-1] in (names.REGISTRY_BUCKET, names.LEASES_BUCKET)}
    everything = {w.label for w in WANTED}

    def logged() -> set[str]:
        return {line.get("object_kind", "") + " " + line.get("object_name", "") for line in log_lines(api)
                if line.get("action") == "recreated"}

    # a check logs its repairs once it has made them all, in one go: the log is read once that has happened (the
    # objects can all be back a moment before their lines are written)
    recreated = wait_for(lambda: (seen := logged()) >= everything - own and seen, timeout=15,
                         what="the recreated objects' log lines")
    assert everything - own <= recreated <= everything, "one JSON log line per recreated object, named as a field"
    with httpx.Client(base_url=url, timeout=10) as client:
        ready = wait_for(lambda: (r := client.get("/readyz")).status_code == 200 and r.json(), what="ready again")
        assert {r["object"] for r in ready["repairs"]} == recreated
        topology = wait_for(lambda: (t := client.get("/v1/stats").json()["topology"])["apiCallsPerCheck"] == 2
                            and t, what="a quiet check: STREAM.LIST + CONSUMER.LIST")
        # /v1/stats' repairs also hold limits updated in place ("updated"): a registry or leases bucket its user
        # made first, which the check then brought to its limits (a fresh clone's run: both listed, failing the test)
        assert topology["ok"] and {r["object"] for r in topology["repairs"] if r["action"] == "recreated"} == recreated
        assert client.post("/ads", json=ad("After the repair")).status_code == 202
    assert_doctor_clean(url)


def test_a_deleted_level_consumer_comes_back_and_every_level_runs(lane: dict[str, Any]) -> None:
    """The issue's example: `nats consumer rm GAMEAD_ADS gamead-p3` stalled p1 and p3 (0 of 5 each in 30 s)."""
    server, url = lane["nats"], lane["url"]
    on_js(server.url, lambda js: js.delete_consumer(names.ADS_STREAM, "gamead-p3"))
    with httpx.Client(base_url=url, timeout=10) as client:
        ids = []
        for i in range(5):
            for priority in (1, 3):
                resp = client.post("/ads", json=ad(f"Level {priority} ad {i}", priority))
                assert resp.status_code == 202
                ids.append(resp.json()["id"])
        done = [wait_terminal(client, ad_id, timeout=30)["status"] for ad_id in ids]
    assert done == ["completed"] * 10, "5 of 5 p1 and 5 of 5 p3 ads completed"
    assert not_ok(server.url) == {}
    assert_doctor_clean(url)


def autoscaler_holder(url: str) -> str:
    """The holder of the autoscaler lease while it is live, else ""."""

    async def read(js: Any) -> str:
        try:
            entry = await (await js.key_value(names.LEASES_BUCKET)).get(AUTOSCALER_LEASE)
        except Exception:  # noqa: BLE001 - no bucket or no lease yet
            return ""
        lease = Lease.from_json(entry.value)
        return lease.holder if lease is not None and not lease.expired(time.time()) else ""

    return on_js(url, read)  # type: ignore[no-any-return]


def test_a_live_leader_is_not_named_gone_while_its_entry_comes_back_to_a_recreated_registry(
        lane: dict[str, Any]) -> None:
    """flakes50A: once the registry bucket was deleted (`nats kv rm gamead_registry`, or a restarted nats-server's
    empty memory store) and recreated, `gamead doctor` said of the answering API's autoscaler lease "its holder has
    no live registry entry (the node is gone)", a lease_stuck error that --repair offers to release, until the API's
    next beat (30 s here)."""
    server, url = lane["nats"], lane["url"]
    leader = wait_for(lambda: autoscaler_holder(server.url), timeout=15, what="the autoscaler lease held")
    assert leader.startswith("api-")
    on_js(server.url, lambda js: js.delete_key_value(names.REGISTRY_BUCKET))
    wait_for(lambda: not_ok(server.url) == {}, timeout=15, what="the registry bucket recreated")
    # the API beats every 30 s: its entry is back only then, and the doctor asks now
    report = doctor_report(url)
    assert [f["details"] for f in report["findings"] if f["kind"] == "lease_stuck"] == []  # type: ignore[union-attr]
    assert autoscaler_holder(server.url) == leader
    assert_doctor_clean(url)


def test_an_incompatible_consumer_is_reported_and_never_overwritten(lane: dict[str, Any]) -> None:
    server, api, url = lane["nats"], lane["api"], lane["url"]
    logged_before = len(log_lines(api))  # the lane's API: earlier tests' lines (a deleted stream) are not ours
    squatter = ConsumerConfig(durable_name="gamead-p3", filter_subject=names.level_subject(3),
                              deliver_subject="somebody.else", ack_policy=AckPolicy.EXPLICIT)

    async def replace_with_push_consumer(js: Any) -> bool:
        try:
            await js.delete_consumer(names.ADS_STREAM, "gamead-p3")
            await js.add_consumer(names.ADS_STREAM, squatter)
        except nats.js.errors.APIError:
            return False  # the watch recreated gamead's consumer in between: try again
        return True

    wait_for(lambda: on_js(server.url, replace_with_push_consumer), what="a push consumer named gamead-p3")
    with httpx.Client(base_url=url, timeout=10) as client:
        ready = wait_for(lambda: (r := client.get("/readyz").json())["status"] == "degraded" and r,
                         timeout=10, what="/readyz degraded")
        assert ready["checks"]["topology"].startswith("degraded: consumer gamead-p3 incompatible")
        assert "push consumer" in ready["checks"]["topology"]
        problems = wait_for(lambda: client.get("/v1/stats").json()["topology"]["problems"], what="stats problem")
        assert [(p["object"], p["state"]) for p in problems] == [("consumer gamead-p3", "incompatible")]
        assert client.post("/ads", json=ad("Still accepted", 1)).status_code == 202  # not essential: serving
        wait_for(lambda: client.get("/v1/stats").json()["topology"]["checkedAt"] is not None, what="checks")
    info = on_js(server.url, lambda js: js.consumer_info(names.ADS_STREAM, "gamead-p3"))
    assert info.config.deliver_subject == "somebody.else", "the watch never overwrote it"
    errors = [line for line in log_lines(api)[logged_before:]
              if line["level"] == "ERROR" and line.get("object_name") == "gamead-p3"
              and line["problem"] == "incompatible"]
    assert len(errors) == 1, "reported once, not on every check"
    on_js(server.url, lambda js: js.delete_consumer(names.ADS_STREAM, "gamead-p3"))  # the operator's fix
    wait_for(lambda: not_ok(server.url) == {}, timeout=10, what="gamead-p3 recreated as gamead's")
    with httpx.Client(base_url=url, timeout=10) as client:
        wait_for(lambda: client.get("/readyz").json()["status"] == "ready", what="ready again")
    # the first test deleted the registry bucket: the API's entry is back only with its next heartbeat (FAST: 30 s
    # apart); the doctor no longer names the lease it holds meanwhile a gone node's (lease51: before, a loaded run
    # whose doctor looked within 20 s of the deletion saw lease_stuck, and this deadline spanned a beat, 45 s)
    assert_doctor_clean(url)


def test_an_api_facing_an_incompatible_work_stream_says_so_and_never_publishes_into_it(
    fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path
) -> None:
    server = fresh_nats()
    on_js(server.url, lambda js: js.add_stream(StreamConfig(
        name=names.ADS_STREAM, subjects=[names.ADS_SUBJECT_WILDCARD], retention=RetentionPolicy.LIMITS)))
    api, url = start_api(server.url, tmp_path, ready=False)
    procs.append(api)
    with httpx.Client(base_url=url, timeout=10) as client:
        status, ready = wait_for(lambda: (r := readyz(client)) and r[1]["checks"]["nats"] == "ok" and r,
                                 timeout=30, what="/readyz answering with NATS connected")
        assert status == 503
        assert ready["checks"]["topology"].startswith(f"failing: stream {names.ADS_STREAM} incompatible")
        assert "retention" in ready["checks"]["topology"]
        resp = client.post("/ads", json=ad("Refused"))
        assert resp.status_code == 503 and resp.json()["error"]["code"] == "topology_error"
    info = on_js(server.url, lambda js: js.stream_info(names.ADS_STREAM))
    assert info.config.retention == RetentionPolicy.LIMITS and info.state.messages == 0
    startup = [line for line in log_lines(api) if line["level"] == "ERROR" and line.get("object_name") == names.ADS_STREAM]
    assert len(startup) == 1 and "retention" in startup[0]["message"]
    report = doctor_report(url)  # gamead doctor names it, and --repair leaves it alone
    (finding,) = report["findings"]
    assert (finding["kind"], finding["sample"], finding["repair"]) == (
        "topology_incompatible", [f"stream {names.ADS_STREAM}"], None)
    assert "retention" in finding["details"][f"stream {names.ADS_STREAM}"]
