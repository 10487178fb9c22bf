"""review30b F8, F9 on the API in-process over a real nats-server.

F8: a keyed ad of ``POST /ads/batch`` whose submit raises something that is not a gamead error (here a ValueError
raised in the API's own intake for one ad) is that ad's own ``internal_error``, naming its index and id, while the
others are queued; the unkeyed pipeline raising stops the keyed submits before the request is answered (before: a
500 while the other lanes went on queueing). F9: a fresh quoted key reads its two possible records at once, and a
422 names the key, not the quoted value an older API stored."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from gamead_core.api.app import create_app
from gamead_core.api.auth import ANONYMOUS
from gamead_core.api.observed_intake import ObservedIntake
from gamead_core.config import GameadSettings
from gamead_core.embedded import EmbeddedNats
from gamead_core.intake import keyed_ad_id
from gamead_core.models import AdSubmission
from gamead_core.store.ads import AdStore
from tests.support import ad, until_ready


@asynccontextmanager
async def api(url: str) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    app = create_app(GameadSettings(ratelimit={"enabled": False}), url)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, raise_app_exceptions=False), base_url="http://api") as client:
        await until_ready(client)
        yield app, client


def test_a_keyed_ad_failing_unexpectedly_is_its_own_error_and_the_others_are_queued(
        nats_server: EmbeddedNats, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    run = uuid.uuid4().hex[:8]
    batch = {"ads": [ad(f"Lane {run} {i}", priority=4) for i in range(60)]}
    bad = 37
    submit = ObservedIntake.submit

    async def failing(self: ObservedIntake, *args: Any, **kwargs: Any) -> Any:
        if args and isinstance(args[0], AdSubmission) and args[0].title == f"Lane {run} {bad}":
            raise ValueError("a bug in one ad's submit")
        return await submit(self, *args, **kwargs)

    monkeypatch.setattr(ObservedIntake, "submit", failing)
    caplog.set_level(logging.ERROR, logger="gamead_core.api.batch_keyed")

    async def scenario() -> tuple[httpx.Response, list[int]]:
        async with api(nats_server.url) as (_app, client):
            answer = await client.post("/ads/batch", json=batch, headers={"Idempotency-Key": run})
            found = [(await client.get(f"/ads/{keyed_ad_id(ANONYMOUS.scope, f'{run}-{i}')}")).status_code
                     for i in range(60)]
            return answer, found

    answer, found = asyncio.run(scenario())
    assert answer.status_code == 200, answer.text[:500]  # was: 500 internal_error for the whole batch
    body = answer.json()
    assert (body["accepted"], body["rejected"]) == (59, 1), body
    error = body["results"][bad]["error"]
    assert error["code"] == "internal_error", error
    assert error["details"] == {"index": bad, "adId": keyed_ad_id(ANONYMOUS.scope, f"{run}-{bad}")}, error
    assert "resend it with the same key" in error["message"], error
    assert found == [404 if i == bad else 200 for i in range(60)]  # every other ad is queued, that one is not
    assert any(f"item {bad} of a batch failed" in r.getMessage() and r.exc_info for r in caplog.records)


def test_the_unkeyed_pipeline_failing_stops_the_keyed_submits_before_the_answer(
        nats_server: EmbeddedNats, monkeypatch: pytest.MonkeyPatch) -> None:
    run = uuid.uuid4().hex[:8]
    ads = [{**ad(f"Mixed {run} {i}", priority=5), **({"idempotencyKey": f"{run}-{i}"} if i % 2 else {})}
           for i in range(400)]  # 200 unkeyed (one pipeline) beside 200 keyed (25 at a time)
    in_flight, ended = [0], [0]
    submit = ObservedIntake.submit

    async def counted(self: ObservedIntake, *args: Any, **kwargs: Any) -> Any:
        in_flight[0] += 1
        try:
            return await submit(self, *args, **kwargs)
        finally:
            in_flight[0] -= 1
            ended[0] += 1

    async def broken(self: ObservedIntake, *args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while ended[0] < 30 and loop.time() < deadline:  # the keyed lanes are under way (a lane took its 2nd ad)
            await asyncio.sleep(0.001)
        raise ValueError("a bug in the unkeyed pipeline")

    monkeypatch.setattr(ObservedIntake, "submit", counted)
    monkeypatch.setattr(ObservedIntake, "submit_many", broken)

    async def scenario() -> tuple[httpx.Response, int, int, int]:
        async with api(nats_server.url) as (_app, client):
            answer = await client.post("/ads/batch", json={"ads": ads})
            at_answer, ended_at_answer = in_flight[0], ended[0]  # read before anything else runs
        return answer, at_answer, ended_at_answer, ended[0]

    answer, at_answer, ended_at_answer, ended_at_close = asyncio.run(scenario())
    assert answer.status_code == 500 and answer.json()["error"]["code"] == "internal_error", answer.text[:300]
    assert ended_at_answer >= 30  # the keyed submits had started
    assert at_answer == 0  # none still running when the batch was answered (was: the other lanes went on)
    assert ended_at_close == ended_at_answer  # and none ended after the answer


def test_a_fresh_quoted_key_reads_both_records_at_once(
        nats_server: EmbeddedNats, monkeypatch: pytest.MonkeyPatch) -> None:
    """A quoted key may name an ad an older API stored under the quoted value: both ids are read, at once (one
    round trip), not one after the other; a bare key reads one."""
    run = uuid.uuid4().hex[:8]
    reading, peak, reads = [0], [0], [0]
    get = AdStore.get

    async def counted(self: AdStore, *args: Any, **kwargs: Any) -> Any:
        reading[0] += 1
        reads[0] += 1
        peak[0] = max(peak[0], reading[0])
        try:
            return await get(self, *args, **kwargs)
        finally:
            reading[0] -= 1

    async def scenario() -> tuple[httpx.Response, int, int, httpx.Response, int]:
        async with api(nats_server.url) as (_app, client):
            monkeypatch.setattr(AdStore, "get", counted)
            quoted = await client.post("/ads", json=ad(f"Quoted {run}"), headers={"Idempotency-Key": f'"q-{run}"'})
            quoted_peak, quoted_reads = peak[0], reads[0]
            peak[0] = reads[0] = 0
            bare = await client.post("/ads", json=ad(f"Bare {run}"), headers={"Idempotency-Key": f"b-{run}"})
            return quoted, quoted_peak, quoted_reads, bare, reads[0]

    quoted, quoted_peak, quoted_reads, bare, bare_reads = asyncio.run(scenario())
    assert quoted.status_code == 202 and quoted.json()["duplicate"] is False, quoted.text
    assert quoted.json()["id"] == keyed_ad_id(ANONYMOUS.scope, f"q-{run}")
    assert (quoted_reads, quoted_peak) == (2, 2)  # was: 2 reads, 1 at a time
    assert bare.status_code == 202 and bare_reads == 1, bare.text


def test_a_reused_quoted_key_is_named_as_the_key_whichever_record_holds_it(nats_server: EmbeddedNats) -> None:
    """``Idempotency-Key: "order-X"`` with another ad is refused naming ``'order-X'``, the key the client sent,
    both when an older API stored the first ad under the quoted value and when this one stored it under the key
    (was: ``'"order-X"'`` for the former)."""
    run = uuid.uuid4().hex[:8]

    async def scenario() -> list[httpx.Response]:
        async with api(nats_server.url) as (app, client):
            intake = app.state.link.intake
            await intake.submit(AdSubmission.model_validate(ad(f"Old {run}")), f'"old-{run}"', scope=ANONYMOUS.scope)
            await intake.submit(AdSubmission.model_validate(ad(f"New {run}")), f"new-{run}", scope=ANONYMOUS.scope)
            return [await client.post("/ads", json=ad(f"Other {run}"), headers={"Idempotency-Key": f'"{k}-{run}"'})
                    for k in ("old", "new")]

    for answer, key in zip(asyncio.run(scenario()), (f"old-{run}", f"new-{run}"), strict=True):
        assert answer.status_code == 422, answer.text
        error = answer.json()["error"]
        assert error["code"] == "idempotency_key_reused" and error["details"]["idempotencyKey"] == key, error
        assert f"Idempotency-Key '{key}' was used" in error["message"], error
