"""review30 F4-F6 on the API in-process over a real nats-server: a quoted ``Idempotency-Key`` stored the old way
(quotes included) still answers its resend as a duplicate (F4); a header-keyed batch goes 25 keyed submits at a time,
keeps every ad, and a ``POST /ads`` sent meanwhile is answered before it (F5); its records' bytes count against
``nats.max_pending_bytes`` (F5); an item's own key that another item derives from the header refuses the batch
(F6). The order answers complete in, never how long they took."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import orjson
import pytest

from gamead_core.api.app import create_app
from gamead_core.api.auth import ANONYMOUS
from gamead_core.api.batch_keyed import AT_ONCE
from gamead_core.api.observed_intake import ObservedIntake
from gamead_core.config import GameadSettings
from gamead_core.embedded import EmbeddedNats
from gamead_core.intake import keyed_ad_id
from gamead_core.models import AdSubmission
from tests.support import ad, until_ready
from tests.waits import until


@asynccontextmanager
async def api(url: str, **settings: Any) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    app = create_app(GameadSettings(ratelimit={"enabled": False}, **settings), url)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://api") as client:
        await until_ready(client)
        yield app, client


def test_a_quoted_key_stored_before_the_upgrade_answers_its_resend_as_a_duplicate(nats_server: EmbeddedNats) -> None:
    """An API before 1cac28b stored ``Idempotency-Key: "abc"`` as the key ``"abc"`` (quotes included). The resend
    after the upgrade (or to a newer node of a rolling deploy) names that first ad, ``duplicate: true``, and queues
    nothing; another ad under it is still refused, as it was before."""
    run = uuid.uuid4().hex[:8]
    sent = f'"order-{run}"'
    first_ad, other_ad = ad(f"Legacy {run}", priority=2), ad(f"Legacy {run} other", priority=2)

    async def scenario() -> tuple[Any, httpx.Response, httpx.Response, httpx.Response]:
        async with api(nats_server.url) as (app, client):
            old = await app.state.link.intake.submit(AdSubmission.model_validate(first_ad), sent,
                                                     scope=ANONYMOUS.scope)  # the old API's way: the raw value
            again = await client.post("/ads", json=first_ad, headers={"Idempotency-Key": sent})
            other = await client.post("/ads", json=other_ad, headers={"Idempotency-Key": sent})
            new_id = keyed_ad_id(ANONYMOUS.scope, f"order-{run}")  # where the quoted key is stored now
            return old, again, other, await client.get(f"/ads/{new_id}")

    old, again, other, new = asyncio.run(scenario())
    assert again.status_code == 202, again.text
    assert (again.json()["id"], again.json()["duplicate"]) == (old.record.id, True)
    assert new.status_code == 404  # nothing queued a second time under the key's new id
    assert other.status_code == 422 and other.json()["error"]["code"] == "idempotency_key_reused", other.text


def test_a_header_keyed_batch_of_500_goes_25_at_a_time_keeps_every_ad_and_lets_a_single_post_by(
        nats_server: EmbeddedNats, monkeypatch: pytest.MonkeyPatch) -> None:
    run = uuid.uuid4().hex[:8]
    batch = {"ads": [ad(f"Keyed Bulk {run} {i}", priority=5) for i in range(500)]}
    in_flight, peak = [0], [0]
    submit = ObservedIntake.submit

    async def counted(self: ObservedIntake, *args: Any, **kwargs: Any) -> Any:
        if len(args) < 2 or args[1] is None:  # not a keyed submit (the single POST /ads)
            return await submit(self, *args, **kwargs)
        in_flight[0] += 1
        peak[0] = max(peak[0], in_flight[0])
        try:
            return await submit(self, *args, **kwargs)
        finally:
            in_flight[0] -= 1

    monkeypatch.setattr(ObservedIntake, "submit", counted)

    async def scenario() -> tuple[list[str], httpx.Response, httpx.Response]:
        async with api(nats_server.url) as (_app, client):
            await client.post("/ads", json=ad(f"Warm {run}", priority=5))  # the connection's first writes done
            bulk = asyncio.create_task(client.post("/ads/batch", json=batch, headers={"Idempotency-Key": run}))
            # every turn of the loop (interval 0): the moment the batch's keyed submits have started
            await until(lambda: in_flight[0] > 0 or bulk.done(), timeout=60, interval=0, what="the batch under way")
            assert in_flight[0] > 0, "the batch's keyed submits never started"
            single = asyncio.create_task(client.post("/ads", json=ad(f"Urgent {run}", priority=1)))
            finished: list[str] = []  # the order the two answers complete in
            bulk.add_done_callback(lambda _: finished.append("batch"))
            single.add_done_callback(lambda _: finished.append("single"))
            return finished, await bulk, await single

    finished, answer, single = asyncio.run(scenario())
    assert answer.status_code == 200 and single.status_code == 202, (answer.text[:300], single.text)
    body = answer.json()
    assert (body["accepted"], body["duplicates"], body["rejected"]) == (500, 0, 0)
    assert all("id" in r and r["duplicate"] is False for r in body["results"])  # none MaybeQueued, none lost
    assert peak[0] <= AT_ONCE, peak  # the batch's keyed submits, 25 at a time (was: all 500 at once)
    assert finished == ["single", "batch"]


def test_a_keyed_batch_counts_its_records_bytes_against_max_pending_bytes(nats_server: EmbeddedNats) -> None:
    """Keyed records carry the id, key and fingerprint beside the ad: a header-keyed batch whose body alone fits
    ``nats.max_pending_bytes`` twice but whose records do not is refused before anything is queued."""
    run = uuid.uuid4().hex[:8]
    limit = 64 * 1024
    batch = {"ads": [ad(f"Roomy {run} {i}", priority=5) for i in range(100)]}
    assert 2 * len(orjson.dumps(batch)) < limit  # what the batch's room was counted as

    async def scenario() -> tuple[httpx.Response, httpx.Response]:
        async with api(nats_server.url, nats={"max_pending_bytes": limit}) as (_app, client):
            refused = await client.post("/ads/batch", content=orjson.dumps(batch), headers={
                "Idempotency-Key": run, "Content-Type": "application/json"})
            return refused, await client.get(f"/ads/{keyed_ad_id(ANONYMOUS.scope, f'{run}-0')}")

    refused, first = asyncio.run(scenario())
    assert refused.status_code == 503, refused.text
    error = refused.json()["error"]
    assert error["code"] == "queue_unavailable" and "adId" not in error["details"], error
    assert error["details"]["writeBytes"] > limit and "smaller parts" in error["message"], error
    assert first.status_code == 404  # nothing was queued


def test_an_item_s_own_key_that_another_item_derives_refuses_the_batch(client: httpx.Client) -> None:
    """With header ``K``, item 1 (no key of its own) gets ``K-1``: item 0 carrying ``K-1`` itself would share it
    with another ad. 400 naming both items, nothing queued: the key is still free afterwards. Both readings of the
    body (every item valid; an invalid item among them) refuse it."""
    run = uuid.uuid4().hex[:8]
    key = f"reserved-{run}"
    mine = {**ad(f"Own {run}"), "idempotencyKey": f"{key}-1"}
    for ads, indexes in (([mine, ad(f"Derived {run}")], [0, 1]),
                         ([{**mine, "idempotencyKey": f"{key}-2"}, {"title": 1}, ad(f"Derived {run}")], [0, 2])):
        answer = client.post("/ads/batch", json={"ads": ads}, headers={"Idempotency-Key": key})
        assert answer.status_code == 400, answer.text
        error = answer.json()["error"]
        assert error["code"] == "invalid_idempotency_key" and error["details"]["indexes"] == indexes, error
        assert f"item {indexes[0]}" in error["message"] and f"item {indexes[1]}" in error["message"]
    for n in (1, 2):  # nothing was queued under either key
        free = client.post("/ads", json=ad(f"Later {run} {n}"), headers={"Idempotency-Key": f"{key}-{n}"})
        assert (free.status_code, free.json()["duplicate"]) == (202, False), free.text
    # an item whose own key is K-<n> of an item that has its own key too takes nothing from anyone: accepted
    fine = client.post("/ads/batch", headers={"Idempotency-Key": f"other-{run}"}, json={"ads": [
        {**ad(f"Fine {run} A"), "idempotencyKey": f"other-{run}-1"}, {**ad(f"Fine {run} B"), "idempotencyKey": "x" + run}]})
    assert fine.status_code == 200 and fine.json()["accepted"] == 2, fine.text
