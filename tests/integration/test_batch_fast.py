"""Issue 14.3/14.4 on a real API and NATS: a batch read in one validation call answers each ad as ``POST /ads``
answers it alone. A batch mixing valid ads, each kind of invalid one and keyed ones gets, per item, the
result N single submits get: the same error (code, message, details) for a refused ad, a queued ad at the
same priority for a valid one, and for a keyed one the very ad a single submit with that key finds."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.support import ad


def mixed(run: str) -> list[dict[str, Any]]:
    """(item, Idempotency-Key of the single submit or None): every kind of item a batch may carry."""
    return [
        ad(f"Fine {run}", priority=1),
        {**ad(f"Too long {run}"), "duration": 9999},
        {**ad(f"Bool {run}"), "priority": True},
        {**ad(f"Float {run}"), "duration": 30.0},
        {**ad(f"Unknown {run}"), "colour": "red"},
        {**ad(f"Blank {run}"), "genre": "\u200b "},
        {**ad(f"Control {run}"), "callToAction": "Play\x07"},
        {k: v for k, v in ad(f"Missing {run}").items() if k != "description"},
        {**ad(f"Tag {run}"), "targetAudience": ["x" * 101]},
        {**ad(f"Keyed {run}", priority=4), "idempotencyKey": f"fast-{run}"},
        ad(f"  Padded {run}  ", priority=5, visualElements=[" dragons "]),
    ]


def single(client: httpx.Client, item: dict[str, Any]) -> httpx.Response:
    body = {k: v for k, v in item.items() if k != "idempotencyKey"}
    key = item.get("idempotencyKey")
    return client.post("/ads", json=body, headers={"Idempotency-Key": key} if key else {})


def test_a_mixed_batch_answers_each_ad_as_a_single_submit_would(client: httpx.Client) -> None:
    run = uuid.uuid4().hex[:8]
    items = mixed(run)
    response = client.post("/ads/batch", json={"ads": items})
    assert response.status_code == 200, response.text
    body = response.json()
    results = body["results"]
    assert (body["accepted"], body["rejected"]) == (3, len(items) - 3)
    for item, result in zip(items, results, strict=True):
        alone = single(client, item)
        if alone.status_code == 202:
            assert result["status"] == "queued" and result["priority"] == alone.json()["priority"], item
            if "idempotencyKey" in item:  # the single submit with the same key finds the batch's ad
                assert alone.json()["id"] == result["id"] and alone.json()["duplicate"] is True
            else:
                record = client.get(f"/ads/{result['id']}").json()
                assert record["ad"] == client.get(f"/ads/{alone.json()['id']}").json()["ad"]
        else:
            assert alone.status_code == 422, alone.text
            assert result == alone.json(), item  # code, message and details, exactly


def test_an_all_valid_batch_is_queued_as_single_submits_would_be(client: httpx.Client) -> None:
    """The one-call path (every ad valid, none keyed): stripped texts and defaults as ``POST /ads`` stores them."""
    run = uuid.uuid4().hex[:8]
    items = [ad(f" Valid {run} #{i} ", priority=1 + i % 5, targetAudience=[f" t{i} "]) for i in range(12)]
    body = client.post("/ads/batch", json={"ads": items}).json()
    assert (body["accepted"], body["rejected"]) == (12, 0)
    for i in (0, 7, 11):
        alone = single(client, items[i]).json()
        batched = client.get(f"/ads/{body['results'][i]['id']}").json()
        assert batched["ad"] == client.get(f"/ads/{alone['id']}").json()["ad"]
        assert batched["ad"]["title"] == f"Valid {run} #{i}" and batched["priority"] == 1 + i % 5


def test_a_valid_batch_with_keys_answers_as_keyed_single_submits(client: httpx.Client) -> None:
    """The one-call path with keys: a keyed ad is the ad its key names for a single submit too, and a repeat
    of the batch answers the keyed ads as duplicates (the un-keyed ones are new ads)."""
    run = uuid.uuid4().hex[:8]
    items: list[dict[str, Any]] = [ad(f"Plain {run}"), {**ad(f"Key A {run}", priority=2), "idempotencyKey": f"a-{run}"},
                                   {**ad(f"Key B {run}"), "idempotencyKey": f"b-{run}"}]
    first = client.post("/ads/batch", json={"ads": items}).json()
    assert (first["accepted"], first["rejected"]) == (3, 0)
    assert [r["duplicate"] for r in first["results"]] == [False, False, False]
    alone = single(client, items[1]).json()
    assert alone["id"] == first["results"][1]["id"] and alone["duplicate"] is True
    again = client.post("/ads/batch", json={"ads": items}).json()
    assert [r["duplicate"] for r in again["results"]] == [False, True, True]
    assert [r["id"] for r in again["results"][1:]] == [r["id"] for r in first["results"][1:]]
    reused = client.post("/ads/batch", json={"ads": [{**items[2], "title": "Another"}]}).json()["results"][0]
    assert reused == single(client, {**items[2], "title": "Another"}).json()  # idempotency_key_reused, same text
