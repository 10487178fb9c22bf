"""A body naming unknown keys by the thousand is refused at the cost of a few (attack36 F2): one batch item of
150,000 unknown keys (1.7 MB, under ``api.batch_max_body_bytes``) was answered 200 after 4.5 s with an 11 MB answer
(one ``details`` entry per key, built on the event loop) while ``/healthz`` waited 4.4 s; ``POST /ads`` with 5,000
unknown keys answered 353 KB. Now ``details`` holds at most ``MAX_DETAILS`` (20) entries and the message counts the
rest; only the first 5 unknown keys of an object are validated. Real API and NATS (the suite's shared stack)."""

from __future__ import annotations

import httpx
import orjson

from gamead_core.api.errors import MAX_DETAILS
from tests.support import ad


def _unknown(count: int) -> dict[str, int]:
    return {f"k{i}": 1 for i in range(count)}


def test_a_batch_item_of_150000_unknown_keys_gets_a_short_error(client: httpx.Client) -> None:
    body = orjson.dumps({"ads": [{**ad("Many keys"), **_unknown(150_000)}, ad("Fine beside it")]})
    assert len(body) < 2 * 1024 * 1024  # under the batch's body cap
    answer = client.post("/ads/batch", content=body, headers={"Content-Type": "application/json"}, timeout=60)
    assert answer.status_code == 200 and len(answer.content) < 8_000  # before: 11 MB
    bad, fine = answer.json()["results"]
    assert bad["error"]["code"] == "validation_failed"
    assert len(bad["error"]["details"]) == 5  # the first 5 unknown keys, named
    assert bad["error"]["details"][0]["msg"] == "unknown field 'k0'"
    assert bad["error"]["message"].endswith("(and 149995 more)")
    assert fine["status"] == "queued"


def test_post_ads_with_5000_unknown_keys_lists_at_most_twenty(client: httpx.Client) -> None:
    answer = client.post("/ads", content=orjson.dumps({**_unknown(5000), "title": 7}),
                         headers={"Content-Type": "application/json"})
    error = answer.json()["error"]
    assert answer.status_code == 422 and error["code"] == "validation_failed"
    assert len(error["details"]) <= MAX_DETAILS and len(answer.content) < 4_000  # before: 353 KB
    locs = [d["loc"] for d in error["details"]]
    assert "title" in locs and "k0" in locs  # the bad value is still named beside the first unknown keys
    assert error["message"].endswith("(and 5000 more)")  # 5,005 problems (5,000 unknown keys, title, 4 missing)
