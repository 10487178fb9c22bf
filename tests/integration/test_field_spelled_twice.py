"""An ad giving one field under both its names, JSON (``targetAudience``) and Python (``target_audience``), on a
real API and NATS: either name is accepted (pydantic ``populate_by_name``), both at once are ambiguous. It was a
422 calling the Python name an unknown field (pydantic keeps the alias's value and forbids the other); now 400
``ambiguous_field`` naming both keys, for every such field, and per ad in a batch; nothing is queued."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

from gamead_core.ad_ids import new_ad_id
from tests.integration.dlq_lane import Lane, lane, made_up_entry  # noqa: F401 - the lane fixture
from tests.support import ad

#: (JSON name, Python name, a value) of every field of the submission model with two names
_FIELDS = [("targetAudience", "target_audience", ["casual gamers"]),
           ("visualElements", "visual_elements", ["bright colours"]),
           ("callToAction", "call_to_action", "Play now")]


@pytest.mark.parametrize(("alias", "name", "value"), _FIELDS, ids=[f[0] for f in _FIELDS])
def test_an_ad_giving_a_field_under_both_names_is_refused_naming_both(
        client: httpx.Client, alias: str, name: str, value: object) -> None:
    key = f"both-{uuid.uuid4().hex}"
    resp = client.post("/ads", json={**ad("Both Names"), alias: value, name: value},
                       headers={"Idempotency-Key": key})
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert error["code"] == "ambiguous_field", error
    assert error["details"] == {"field": alias, "keys": [alias, name]}
    assert f'"{alias}" is given twice, as "{alias}" and as "{name}"' in error["message"]
    fresh = client.post("/ads", json=ad("Both Names"), headers={"Idempotency-Key": key})
    assert fresh.status_code == 202 and fresh.json()["duplicate"] is False, fresh.text  # nothing was queued


def test_either_name_alone_is_still_accepted(client: httpx.Client) -> None:
    sent = {k: v for k, v in ad("One Name").items() if k != "targetAudience"}
    resp = client.post("/ads", json={**sent, "target_audience": ["retro fans"]})
    assert resp.status_code == 202, resp.text
    assert client.get(f"/ads/{resp.json()['id']}").json()["ad"]["targetAudience"] == ["retro fans"]


def test_a_batch_ad_giving_a_field_under_both_names_gets_its_own_error(client: httpx.Client) -> None:
    both = {**ad("Batch Both"), "call_to_action": "Play", "callToAction": "Play"}
    resp = client.post("/ads/batch", content=json.dumps({"ads": [ad("Batch One"), both]}).encode())
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert (body["accepted"], body["rejected"]) == (1, 1)
    assert body["results"][0]["status"] == "queued"
    error = body["results"][1]["error"]
    assert error["code"] == "ambiguous_field", error
    assert error["details"] == {"field": "callToAction", "keys": ["callToAction", "call_to_action"]}
    assert error["message"].startswith("the ad is ambiguous:")


def test_a_nested_object_giving_a_field_under_both_names_is_refused_naming_both(lane: Lane) -> None:  # noqa: F811
    """attack27b F3, F4: a DLQ import entry ignores unknown keys (a later gamead's export may carry more), so an
    entry giving ``adId`` and ``ad_id`` was imported with one of them dropped without a word, and an entry's ad or
    a replay's filter giving a field twice was a 422 calling one name unknown. Now each is refused naming both."""
    entry = made_up_entry("Nested Both")
    cases = [
        ("/v1/dlq/import", {"entries": [{**entry, "ad_id": new_ad_id()}], "dryRun": True}, "entries.0", "adId"),
        ("/v1/dlq/import", {"entries": [{**entry, "ad": {**entry["ad"], "target_audience": ["x"]}}], "dryRun": True},
         "entries.0", "targetAudience"),
        ("/v1/dlq/replay", {"filter": {"errorClass": "A", "error_class": "B"}, "dryRun": True}, "filter",
         "errorClass"),
    ]
    for path, body, loc, field in cases:
        resp = lane.http.post(path, json=body)
        assert resp.status_code == 422, (path, resp.text[:300])
        details = resp.json()["error"]["details"]
        assert any(d["loc"] == loc and f'the field "{field}" is given twice' in d["msg"] for d in details), details
