"""Shared values every API node reads, written unusable by hand (attack31b F5): `attempts.lost` past float range,
an autoscaler lease and a manual override naming a time past year 9999. Each is read as none (the counter as 0),
said once in the log; `/metrics`, `/v1/stats`, `/v1/scale` keep answering; the doctor names each value. Before,
`10**400` in the counter made every `/metrics` a 500 with two tracebacks per scrape, and an override until `1e300`
made `GET /v1/scale` a 500."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import httpx
import nats

from gamead_core import names
from gamead_core.embedded import EmbeddedNats
from gamead_core.scaling.lease import Lease
from tests.support import Proc, doctor_report, start_api, wait_for

BAD = {
    (names.SCALING_BUCKET, "attempts.lost"): str(10**400).encode(),
    (names.LEASES_BUCKET, "autoscaler"): json.dumps({"holder": "ghost", "acquiredAt": 1.0, "renewedAt": 1.0,
                                                     "expiresAt": 1e300, "ttl": 3}).encode(),
    (names.SCALING_BUCKET, "override"): json.dumps({"replicas": 3, "until": 1e300, "setAt": 1.0}).encode(),
}


def _put(url: str, values: dict[tuple[str, str], bytes]) -> None:
    async def main() -> None:
        nc = await nats.connect(url)
        try:
            js = nc.jetstream()
            for (bucket, key), value in values.items():
                await (await js.key_value(bucket)).put(key, value)
        finally:
            await nc.close()

    asyncio.run(main())


def _get(url: str, bucket: str, key: str) -> bytes:
    """The value of ``key`` in KV ``bucket`` now."""
    async def main() -> bytes:
        nc = await nats.connect(url)
        try:
            return (await (await nc.jetstream().key_value(bucket)).get(key)).value or b""
        finally:
            await nc.close()

    return asyncio.run(main())


def _bad_heartbeat(url: str) -> None:
    """A worker's registry entry copied from the API's own, its counts past every integer type: `processed`
    10**400, `failed` -10**400 (before, every `GET /v1/workers` was a 500: integer exceeds 64-bit range)."""
    async def main() -> None:
        nc = await nats.connect(url)
        try:
            kv = await nc.jetstream().key_value(names.REGISTRY_BUCKET)
            [key] = await kv.keys()
            doc = json.loads((await kv.get(key)).value or b"{}")
            doc.update(id="w-bad", role="worker", processed=10**400, failed=-(10**400), pid=10**30)
            await kv.put("w-bad", json.dumps(doc).encode())
        finally:
            await nc.close()

    asyncio.run(main())


def _lost(http: httpx.Client, scrapes: list[int]) -> str | None:
    """The `gamead_attempts_lost_total` line of one scrape (None if absent); every scrape's status kept."""
    resp = http.get("/metrics")
    scrapes.append(resp.status_code)
    return next((line for line in resp.text.splitlines() if line.startswith("gamead_attempts_lost_total ")), None)


def test_unusable_shared_values_are_read_as_none_said_once_and_named_by_the_doctor(
        fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path) -> None:
    server = fresh_nats()
    api, url = start_api(server.url, tmp_path)
    procs.append(api)
    scrapes: list[int] = []
    with httpx.Client(base_url=url, timeout=30) as http:
        _put(server.url, {(names.SCALING_BUCKET, "attempts.lost"): b"3"})
        wait_for(lambda: _lost(http, scrapes) == "gamead_attempts_lost_total 3.0", timeout=30, what="the count 3")
        _put(server.url, BAD)
        wait_for(lambda: _lost(http, scrapes) == "gamead_attempts_lost_total 0.0", timeout=30,
                 what="the unusable counter read as 0")
        for _ in range(3):
            _lost(http, scrapes)
        assert set(scrapes) == {200}, f"every scrape answered: {scrapes}"
        assert http.get("/v1/stats").status_code == 200
        _bad_heartbeat(server.url)
        workers = wait_for(lambda: [w for w in http.get("/v1/workers").json()["items"] if w["id"] == "w-bad"],
                           timeout=30, what="the hand-written heartbeat listed")
        assert (workers[0]["processed"], workers[0]["failed"]) == (2**53, 0)
        assert _lost(http, scrapes) is not None and set(scrapes) == {200}
        scale = http.get("/v1/scale")
        assert scale.status_code == 200, scale.text[:300]
        assert scale.json()["override"] is None, "an override until year 1e300 is none"

        report = doctor_report(url)
        [note] = [n for n in report["notes"] if n["kind"] == "unusable_shared_value"]  # type: ignore[union-attr]
        named = set(note["sample"])
        # the API's lease contender takes a lease it reads as none, which replaces the unusable one ("the next
        # write replaces it"); on a loaded machine that came before the doctor's read (load60A): then it is unnamed
        # because it is usable again, never because the doctor missed it
        if "gamead_leases autoscaler" not in named:
            assert Lease.from_json(_get(server.url, names.LEASES_BUCKET, "autoscaler")) is not None, note
        assert named - {"gamead_leases autoscaler"} == {"gamead_scaling attempts.lost", "gamead_scaling override"}
        assert "outside 0 … 2**53" in note["details"]["gamead_scaling attempts.lost"]
        assert report["ok"] is True, "a note, not a broken invariant"

        _put(server.url, {(names.SCALING_BUCKET, "attempts.lost"): b"5"})
        wait_for(lambda: _lost(http, scrapes) == "gamead_attempts_lost_total 5.0", timeout=30,
                 what="the counter usable again")
    log = api.output()
    assert log.count("attempts.lost (KV gamead_scaling) holds a value gamead cannot use") == 1, log[-3000:]
    assert "Traceback" not in log and "unhandled error" not in log, log[-3000:]
    assert log.count("a shared processed is out of range") == 1, log[-3000:]
