"""Issue 14.3 on a real API and NATS: ``POST /ads/batch``, one result per ad in order, per-ad errors, per-ad
idempotency keys (scoped to the caller), rate limits counted per ad, the body and count limits."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import httpx
import pytest

from gamead_core.embedded import EmbeddedNats
from tests.support import Proc, ad, start_api, wait_terminal

TOKENS = [
    {"name": "alice", "token": "s3cret-alice", "role": "submitter"},
    {"name": "bob", "token": "s3cret-bob", "role": "submitter"},
    {"name": "vic", "token": "s3cret-vic", "role": "viewer"},
    {"name": "olga", "token": "s3cret-olga", "role": "operator"},
]
#: olga (the operator role) has a small bucket: 5 ads at once, then one every 100 s
SMALL_BUCKET = {"operator": {"rate": 0.01, "burst": 5}}


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An API with tokens required, rate limits on, a batch of at most 50 ads / 32 KiB, on a NATS of its own."""
    nats_server = EmbeddedNats(tmp_path_factory.mktemp("batch-nats")).start()
    proc: Proc
    proc, url = start_api(
        nats_server.url, tmp_path_factory.mktemp("batch-api"),
        GAMEAD_AUTH__TOKENS=json.dumps(TOKENS), GAMEAD_RATELIMIT__ENABLED="true",
        GAMEAD_RATELIMIT__ROLES=json.dumps(SMALL_BUCKET), GAMEAD_API__BATCH_MAX="50",
        GAMEAD_API__BATCH_MAX_BODY_BYTES="32768",
    )
    yield url
    proc.stop()
    nats_server.stop()


def as_(url: str, who: str) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer s3cret-{who}"}, timeout=20)


def submitted_total(client: httpx.Client) -> float:
    """``sum(gamead_ads_submitted_total)`` of the API's ``/metrics``, read with the official parser."""
    from prometheus_client.parser import text_string_to_metric_families

    return sum(s.value for fam in text_string_to_metric_families(client.get("/metrics").text)
               for s in fam.samples if s.name == "gamead_ads_submitted_total")


def test_a_batch_is_queued_in_order_and_analysed(client: httpx.Client) -> None:
    """Each result is the 202 body of its own ad, in the order sent; the worker analyses every one."""
    run = uuid.uuid4().hex[:6]
    ads = [ad(f"Batch {run} #{i}", priority=1 + i % 5) for i in range(30)]
    submitted = submitted_total(client)
    response = client.post("/ads/batch", json={"ads": ads})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (30, 0)
    # a real Prometheus scrape of `gamead up` showed 0 submitted for 400 processed: batch ads count too
    assert submitted_total(client) == submitted + 30
    results = body["results"]
    assert [r["priority"] for r in results] == [a["priority"] for a in ads]
    assert len({r["id"] for r in results}) == 30 and all(r["status"] == "queued" for r in results)
    for i in (0, 17, 29):  # every id names its own ad, and the ad gets analysed
        record = wait_terminal(client, results[i]["id"])
        assert record["ad"]["title"] == f"Batch {run} #{i}" and record["status"] == "completed"


def test_a_bad_ad_gets_its_own_error_and_the_others_go_through(client: httpx.Client) -> None:
    ads: list[object] = [ad("Fine A"), {**ad("Too long"), "duration": 9999}, "not an ad",
                         {**ad("Unknown field"), "colour": "red"}, ad("Fine B")]
    body = client.post("/ads/batch", json={"ads": ads}).json()
    results = body["results"]
    assert (body["accepted"], body["rejected"]) == (2, 3)
    assert results[0]["status"] == "queued" and results[4]["status"] == "queued"
    assert results[1]["error"]["code"] == "validation_failed"
    assert results[1]["error"]["details"][0]["loc"] == "duration"
    assert results[2]["error"]["code"] == "validation_failed"
    assert results[3]["error"]["details"][0]["msg"] == "unknown field 'colour'"
    assert client.get(f"/ads/{results[4]['id']}").json()["ad"]["title"] == "Fine B"


def test_whole_request_errors(client: httpx.Client) -> None:
    assert client.post("/ads/batch", content=b"{not json").json()["error"]["code"] == "invalid_json"
    assert client.post("/ads/batch", json=[ad("x")]).status_code == 400
    empty = client.post("/ads/batch", json={"ads": []})
    assert empty.status_code == 422 and empty.json()["error"]["code"] == "validation_failed"
    extra = client.post("/ads/batch", json={"ads": [ad("x")], "mode": "fast"})
    assert extra.status_code == 422 and "mode" in extra.json()["error"]["message"]


def test_per_ad_idempotency_keys_are_the_callers_own(guarded: str) -> None:
    """A key inside a batch behaves as the ``Idempotency-Key`` header of ``POST /ads``: bound to its ad,
    scoped to its caller, also when the same key comes twice in one batch."""
    k = f"order-{uuid.uuid4().hex[:8]}"
    with as_(guarded, "alice") as alice, as_(guarded, "bob") as bob:
        first = alice.post("/ads/batch", json={"ads": [{**ad("Alice 1"), "idempotencyKey": k}]}).json()["results"][0]
        again = alice.post("/ads/batch", json={"ads": [
            {**ad("Alice 1"), "idempotencyKey": k},  # exact repeat: the first ad
            {**ad("Alice 2"), "idempotencyKey": k},  # same key, other ad: refused
            {**ad("Alice 3"), "idempotencyKey": ""},  # not a key
        ]}).json()["results"]
        single = alice.post("/ads", json=ad("Alice 1"), headers={"Idempotency-Key": k}).json()
        bobs = bob.post("/ads/batch", json={"ads": [{**ad("Bob 1"), "idempotencyKey": k}]}).json()["results"][0]
    assert first["duplicate"] is False
    assert again[0] == {**first, "duplicate": True}
    assert again[1]["error"]["code"] == "idempotency_key_reused"
    assert again[2]["error"]["code"] == "invalid_idempotency_key"  # the header's rule and code
    assert single["id"] == first["id"] and single["duplicate"] is True  # one key space with the single route
    assert bobs["id"] != first["id"] and bobs["duplicate"] is False


def test_a_batch_key_follows_the_header_s_rules(client: httpx.Client) -> None:
    """A reviewer's finding: a batch took ``"a,b"`` and keys with control characters as ``idempotencyKey``,
    which the ``Idempotency-Key`` header refuses (400 ``duplicate_header``) or cannot carry, so such an ad could
    never be sent again as a header. Now each is that item's ``invalid_idempotency_key`` (the header's code), in a
    batch whose other items are valid (one validation pass) and in one holding an invalid ad too (read item by item)."""
    k = f"ok-{uuid.uuid4().hex[:8]}"
    for other in (ad("Valid beside"), {"title": ""}):
        body = client.post("/ads/batch", json={"ads": [
            {**ad("Comma"), "idempotencyKey": "a,b"}, {**ad("Escape"), "idempotencyKey": "red\u001b[31m"},
            {**ad("Fine"), "idempotencyKey": k}, other]}).json()
        codes = [r.get("error", {}).get("code", "queued") for r in body["results"]]
        assert codes[:3] == ["invalid_idempotency_key", "invalid_idempotency_key", "queued"], body


def test_rate_limits_count_every_ad(guarded: str) -> None:
    """olga's bucket holds 5: a batch of 8 gets 5 ads in and 3 ``rate_limited``; the next batch is a 429."""
    with as_(guarded, "olga") as olga:
        body = olga.post("/ads/batch", json={"ads": [ad(f"Olga {i}") for i in range(8)]}).json()
        codes = [r.get("error", {}).get("code", "queued") for r in body["results"]]
        assert codes == ["queued"] * 5 + ["rate_limited"] * 3
        refused = olga.post("/ads/batch", json={"ads": [ad("Olga again")]})
        assert refused.status_code == 429 and refused.json()["error"]["code"] == "rate_limited"
        assert int(refused.headers["Retry-After"]) >= 1
        single = olga.post("/ads", json=ad("Olga single"))  # the same bucket as POST /ads
        assert single.status_code == 429


def test_count_and_body_limits(guarded: str) -> None:
    with as_(guarded, "alice") as alice:
        many = alice.post("/ads/batch", json={"ads": [ad(f"n{i}") for i in range(51)]})
        assert many.status_code == 422 and many.json()["error"]["code"] == "batch_too_large"
        assert many.json()["error"]["details"] == {"count": 51, "max": 50}
        big = alice.post("/ads/batch", json={"ads": [ad("x" * 100, description="y" * 1900)] * 20})
        assert big.status_code == 413 and "api.batch_max_body_bytes" in big.json()["error"]["message"]


def test_a_viewer_may_not_submit_a_batch(guarded: str) -> None:
    with as_(guarded, "vic") as vic:
        refused = vic.post("/ads/batch", json={"ads": [ad("Viewer")]})
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"


def test_the_batch_route_is_in_the_contract(client: httpx.Client) -> None:
    document = client.get("/openapi.json").json()
    operation = document["paths"]["/ads/batch"]["post"]
    assert {"200", "400", "413", "422", "429", "503"} <= set(operation["responses"])
    assert operation["responses"]["429"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Error"}
