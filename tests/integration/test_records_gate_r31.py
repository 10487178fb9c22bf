"""review31 R1, R1b, R2 on a real nats-server: the record bucket's intake gate judges where the live ads' records
sit in the bucket (its drop order), not how old their messages are.

* R1: a burst into a bucket filled long before is refused before a live ad's record is dropped;
* R1b: one live ad whose message is old but whose record was just rewritten (a retry, an ad parked while the DLQ is
  full) does not stop intake;
* R2: while intake is refused, a keyed repeat (it adds no record) is still answered, and a refused ``POST /ads``
  spends no rate-limit token.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import nats

from gamead_core import names
from gamead_core.embedded import EmbeddedNats
from tests.support import Proc, ad, start_api, wait_for

MIB = 1024 * 1024
SMALL = {"GAMEAD_RECORDS__MAX_BYTES": str(MIB), "GAMEAD_QUEUE__MAX_MSGS": "100000",
         "GAMEAD_RATELIMIT__ADMIN__RATE": "1000", "GAMEAD_RATELIMIT__ADMIN__BURST": "1000"}
FILLER = b"x" * 700  #: a record's worth of bytes (a finished ad's record, as far as the bucket is concerned)


async def _put_records(nats_url: str, prefix: str, until_bytes: int, rewrite: str | None = None) -> None:
    """Records ``<prefix>-<n>`` put into the ad bucket until it holds ``until_bytes``; then, if ``rewrite`` names a
    record, that record put again as it is (what a worker's every write of a retrying ad does: it moves to the
    bucket's new end)."""
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        n = 0
        while (held := (await js.stream_info(names.ADS_BUCKET_STREAM)).state.bytes) < until_bytes:
            step = min(50, (until_bytes - held) // (2 * len(FILLER)) + 1)  # never far past the mark
            await asyncio.gather(*(js.publish(names.kv_subject(names.ADS_BUCKET, f"{prefix}-{n + i}"), FILLER)
                                   for i in range(step)))
            n += step
        if rewrite is not None:
            kv = await js.key_value(names.ADS_BUCKET)
            await kv.put(rewrite, (await kv.get(rewrite)).value or b"")
    finally:
        await nc.close()


def _oldest_record_age(nats_url: str) -> float:
    async def read() -> float:
        nc = await nats.connect(nats_url)
        try:
            first = await nc.jetstream().get_msg(names.ADS_BUCKET_STREAM, seq=1, subject=names.kv_all(names.ADS_BUCKET),
                                                 next=True)
            return time.time() - first.time.timestamp()  # type: ignore[union-attr]
        finally:
            await nc.close()

    return asyncio.run(read())


def _reading_after(client: httpx.Client, moment: float) -> dict[str, Any]:
    """``/v1/stats`` ``records`` from a sample the API's sampler took after ``moment`` (epoch s)."""
    def fresh() -> dict[str, Any] | None:
        stats = client.get("/v1/stats").json()
        at = stats.get("sampledAt")
        return stats["records"] if at and datetime.fromisoformat(at).timestamp() > moment else None

    return wait_for(fresh, timeout=20, what="a stats sample after the writes")


def test_a_burst_after_a_slow_fill_is_refused_before_a_live_record_is_dropped(
    fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path
) -> None:
    server = fresh_nats()
    api, url = start_api(server.url, tmp_path, GAMEAD_RECORDS__REFUSE_AT="0.6", **SMALL)  # no worker: all stay queued
    procs.append(api)
    asyncio.run(_put_records(server.url, "done", int(0.55 * MIB)))  # a quiet stack's finished ads, below the mark
    # the bucket's records span 20 s: a time rule takes the next ones dropped as 20 s older than the live ads
    wait_for(lambda: _oldest_record_age(server.url) >= 20, timeout=50, interval=1, what="the old records 20 s old")
    accepted: list[str] = []
    refusal: dict[str, Any] | None = None
    with httpx.Client(base_url=url, timeout=20) as c:
        for burst in range(30):  # 100 ads of ~0.7 KB a batch: the bucket's whole 1 MiB in ~15 batches
            answer = c.post("/ads/batch", json={"ads": [ad(f"Burst {burst} {i}") for i in range(100)]})
            if answer.status_code == 503:
                refusal = answer.json()["error"]
                break
            assert answer.status_code == 200, answer.text
            accepted += [r["id"] for r in answer.json()["results"]]
            _reading_after(c, time.time())  # the gate decides on a reading taken after these writes
        assert refusal is not None and refusal["code"] == "records_full", f"{len(accepted)} ads taken, none refused"
        lost = [i for i in accepted if c.get(f"/ads/{i}").status_code != 200]
        assert lost == [], f"{len(lost)} of {len(accepted)} queued ads lost their record before intake stopped"


def test_a_live_ad_whose_record_was_just_rewritten_does_not_stop_intake(
    fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path
) -> None:
    server = fresh_nats()
    api, url = start_api(server.url, tmp_path, **SMALL)  # no worker: the ad stays live
    procs.append(api)
    with httpx.Client(base_url=url, timeout=20) as c:
        first = c.post("/ads", json=ad("Parked Long"))
        assert first.status_code == 202, first.text
        parked = first.json()["id"]
        # the bucket fills with finished ads' records; meanwhile the ad's record is rewritten (a retry, an ad
        # parked for DLQ room): its message is older than every record, its record is not
        asyncio.run(_put_records(server.url, "done", MIB // 2, rewrite=parked))
        asyncio.run(_put_records(server.url, "more", MIB - 4 * 1024))
        records = _reading_after(c, time.time())
        assert records["bytes"] >= 0.9 * MIB and records["refusing"] is False, records
        answer = c.post("/ads", json=ad("Next One"))
        assert answer.status_code == 202, answer.text
        assert c.get(f"/ads/{parked}").status_code == 200


def test_while_refusing_a_keyed_repeat_is_answered_and_a_refused_submit_spends_no_token(
    fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path
) -> None:
    server = fresh_nats()
    limits = {"GAMEAD_RATELIMIT__ENABLED": "true", "GAMEAD_RATELIMIT__RATE": "0.001", "GAMEAD_RATELIMIT__BURST": "4"}
    api, url = start_api(server.url, tmp_path, **limits, **SMALL)  # no worker: the keyed ad stays live
    procs.append(api)
    with httpx.Client(base_url=url, timeout=20) as c:
        first = c.post("/ads", json=ad("Keyed Live"), headers={"Idempotency-Key": "r2-key"})
        assert first.status_code == 202, first.text
        asyncio.run(_put_records(server.url, "done", MIB - 4 * 1024))  # its record is the next one dropped
        wait_for(lambda: c.get("/v1/stats").json()["records"]["refusing"], timeout=20, what="intake refused")
        for _ in range(5):  # more than the 3 tokens left: each is refused for the bucket, never rate-limited
            refused = c.post("/ads", json=ad("Another"))
            assert refused.status_code == 503 and refused.json()["error"]["code"] == "records_full", refused.text
        again = c.post("/ads", json=ad("Keyed Live"), headers={"Idempotency-Key": "r2-key"})
        assert again.status_code == 202, again.text
        assert again.json()["id"] == first.json()["id"] and again.json()["duplicate"] is True
        batch = c.post("/ads/batch", json={"ads": [{**ad("Keyed Live"), "idempotencyKey": "r2-key"}]})
        assert batch.status_code == 200, batch.text  # a batch of repeats alike
        (item,) = batch.json()["results"]
        assert item["id"] == first.json()["id"] and item["duplicate"] is True
        fresh = c.post("/ads/batch", json={"ads": [{**ad("Keyed New"), "idempotencyKey": "r2-new"}]})
        assert fresh.status_code == 503 and fresh.json()["error"]["code"] == "records_full", fresh.text
