"""A JSON object naming a key twice is refused (I-JSON, RFC 7493 §2.3), on a real API and NATS.

``{"priority": 1, "priority": 5}`` was queued with priority 5 (the last value): a proxy reading the first value
(1) and gamead would disagree about the same request. Now 400 ``invalid_json`` naming the key, and nothing is
queued: the same ``Idempotency-Key`` then queues a fresh ad (``duplicate: false``). A body that merely holds
such text in a value is accepted as before.
"""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

from tests.support import ad


def _body(title: str, tail: str) -> bytes:
    """An ad's JSON text with ``tail`` (raw JSON members) appended to its object."""
    text = json.dumps(ad(title))
    return (text[:-1] + ", " + tail + "}").encode()


def _fresh_under(client: httpx.Client, key: str, title: str) -> None:
    """Nothing was queued under ``key``: a valid ad sent with it now is a new one."""
    first = client.post("/ads", json=ad(title), headers={"Idempotency-Key": key})
    assert first.status_code == 202 and first.json()["duplicate"] is False, first.text


@pytest.mark.parametrize("tail", ['"priority": 1, "priority": 5', '"pr\\u0069ority": 1, "priority": 5',
                                  '"visualElements": ["a"], "visualElements": ["b"]'],
                         ids=["plain", "escaped-key", "a-list-twice"])
def test_an_ad_naming_a_key_twice_is_refused_and_nothing_is_queued(client: httpx.Client, tail: str) -> None:
    key = f"twice-{uuid.uuid4().hex}"
    body = _body("Twice Named", tail)
    resp = client.post("/ads", content=body, headers={"Idempotency-Key": key})
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    name = "visualElements" if "visual" in tail else "priority"
    assert error["code"] == "invalid_json" and error["details"]["key"] == name
    assert f'the key "{name}" appears twice in one object' in error["message"]
    assert "RFC 7493" in error["message"]
    _fresh_under(client, key, "Twice Named")


def test_a_value_that_merely_holds_key_text_is_accepted(client: httpx.Client) -> None:
    """The byte pre-filter sees ``"priority"`` twice and more colons than keys (a tag, a text holding
    ``\\"priority\\": 1``): the exact check finds no repeated key, and the ad is queued as sent."""
    sent = ad("Quoted Key", priority=4, description='Say "priority": 1', visualElements=["priority"])
    raw = json.dumps(sent).encode()
    assert raw.count(b'"priority"') == 2 and b'\\"priority\\": 1' in raw
    resp = client.post("/ads", content=raw)
    assert resp.status_code == 202, resp.text
    assert resp.json()["priority"] == 4
    record = client.get(f"/ads/{resp.json()['id']}").json()
    assert record["ad"]["description"] == 'Say "priority": 1' and record["ad"]["visualElements"] == ["priority"]


def test_a_batch_ad_naming_a_key_twice_gets_its_own_error_and_the_others_go_through(client: httpx.Client) -> None:
    key = f"twice-batch-{uuid.uuid4().hex}"
    good = json.dumps(ad("Batch Once"))
    twice = json.dumps({**ad("Batch Twice"), "idempotencyKey": key})[:-1] + ', "priority": 5}'
    resp = client.post("/ads/batch", content=f'{{"ads": [{good}, {twice}]}}'.encode())
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert (body["accepted"], body["rejected"]) == (1, 1)
    assert body["results"][0]["status"] == "queued"
    error = body["results"][1]["error"]
    assert error["code"] == "invalid_json" and error["details"] == {"key": "priority", "at": "ads[1]"}
    assert 'the key "priority" appears twice' in error["message"]
    again = client.post("/ads/batch", json={"ads": [{**ad("Batch Twice"), "idempotencyKey": key}]}).json()
    assert again["results"][0]["duplicate"] is False  # the refused ad was not queued under its key


def test_a_batch_naming_ads_twice_is_refused_whole(client: httpx.Client) -> None:
    key = f"twice-ads-{uuid.uuid4().hex}"
    one = json.dumps({**ad("Ads Twice"), "idempotencyKey": key})
    resp = client.post("/ads/batch", content=f'{{"ads": [{one}], "ads": [{one}]}}'.encode())
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert error["code"] == "invalid_json" and 'the key "ads" appears twice' in error["message"]
    again = client.post("/ads/batch", json={"ads": [{**ad("Ads Twice"), "idempotencyKey": key}]}).json()
    assert again["results"][0]["duplicate"] is False


def test_a_repeat_outside_the_ads_array_is_a_400_never_a_500(client: httpx.Client) -> None:
    """A reviewer's body: ``"ads"`` first an object holding a repeated key, then the real array. The repeat's
    path was ``ads.k`` (no item index) and ``int("k")`` raised: a 500 any submitter could cause."""
    one = json.dumps(ad("Ads Object First"))
    body = f'{{"ads": {{"k": {{"a": 1, "a": 2}}}}, "ads": [{one}]}}'.encode()
    resp = client.post("/ads/batch", content=body)
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"]["code"] == "invalid_json"


def test_an_operator_body_naming_a_key_twice_is_refused(client: httpx.Client) -> None:
    """``{"confirm": false, "confirm": true}`` would purge for a reader keeping the last value and not for one
    keeping the first; refused (a dry run here, so nothing is purged either way)."""
    body = b'{"all": true, "dryRun": true, "confirm": false, "confirm": true}'
    resp = client.post("/v1/dlq/purge", content=body)
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"]["code"] == "invalid_json" and resp.json()["error"]["details"]["key"] == "confirm"
