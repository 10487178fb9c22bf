"""Issue 14.3 without servers: reading a batch body, each item on its own, and rate-limit tokens per ad."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from gamead_core.api.errors import ApiError
from gamead_core.api.quota import RateQuota
from gamead_core.api.ratelimit import RateLimiter
from gamead_core.api.routes_batch import parse_batch, parse_item
from gamead_core.config import RateSettings
from tests.support import ad


def test_a_batch_body_is_an_object_with_a_non_empty_list_of_at_most_the_maximum() -> None:
    assert parse_batch(orjson.dumps({"ads": [1, 2]}), 5, 10_000) == [1, 2]
    for body, status, code in [
        (b"{nope", 400, "invalid_json"),
        (b"[1]", 400, "invalid_json"),
        (b'{"ads": []}', 422, "validation_failed"),
        (b'{"ads": {}}', 422, "validation_failed"),
        (b'{"ads": [1], "extra": 1}', 422, "validation_failed"),
        (orjson.dumps({"ads": list(range(6))}), 422, "batch_too_large"),
        (b" " * 10_001, 413, "payload_too_large"),
    ]:
        with pytest.raises(ApiError) as caught:
            parse_batch(body, 5, 10_000)
        assert (caught.value.status, caught.value.code) == (status, code), body[:40]


def test_each_item_is_validated_as_post_ads_validates_its_body() -> None:
    parsed = parse_item({**ad("Fine"), "idempotencyKey": "k-1"})
    assert isinstance(parsed, tuple) and parsed[0].title == "Fine" and parsed[1] == "k-1"
    assert parse_item(ad("No key"))[1] is None  # type: ignore[index]
    bad = parse_item({**ad("Bool"), "duration": True})  # strict: a JSON boolean is never an integer
    assert isinstance(bad, dict) and bad["error"]["code"] == "validation_failed"
    assert bad["error"]["details"][0]["loc"] == "duration"
    for key in ("", "k" * 201, 7):
        refused = parse_item({**ad("Key"), "idempotencyKey": key})
        assert isinstance(refused, dict) and refused["error"]["details"] == {"field": "idempotencyKey"}, refused
        assert refused["error"]["code"] == "invalid_idempotency_key", refused  # the header's rule and code
    assert parse_item("an ad")["error"]["code"] == "validation_failed"  # type: ignore[index]


def test_a_batch_takes_one_token_per_ad_and_as_many_as_are_left() -> None:
    clock = [0.0]
    quota = RateQuota(RateLimiter(None, clock=lambda: clock[0]), "api", "ip:1", RateSettings(rate=1, burst=10))
    assert asyncio.run(quota.take(4))[0] == 4
    assert asyncio.run(quota.take(8))[0] == 6  # 6 left: the first 6 ads go, the others are rate_limited
    taken, decision = asyncio.run(quota.take(1))
    assert taken == 0 and decision.retry_after == pytest.approx(1.0)
    clock[0] += 3.0  # 3 tokens back
    assert asyncio.run(quota.take(5))[0] == 3
