"""review30 F4-F7, the pure parts: the value a quoted key was sent as (F4), the keyed ads' record bytes and their
bound (F5, :mod:`gamead_core.api.batch_keyed`), a derived key colliding with an item's own (F6), the header's
OpenAPI schema describing the value as sent (F7)."""

from __future__ import annotations

import asyncio

import pytest

from gamead_core.api.app import create_app
from gamead_core.api.batch_keyed import at_most, keyed_bytes
from gamead_core.api.batch_keys import check_collisions
from gamead_core.api.errors import InvalidIdempotencyKey
from gamead_core.api.key_header import QuotedKey, header_key
from gamead_core.api.routes_batch import check_room
from gamead_core.config import load_settings
from gamead_core.errors import GameadError, OutboundFull
from gamead_core.intake import ad_fingerprint
from gamead_core.models import AdRecord, AdStatus, NewAd, utcnow
from gamead_core.store.ads import encode
from tests.support import ad


def test_a_quoted_key_carries_the_value_an_older_api_stored() -> None:
    quoted = header_key([(b"idempotency-key", b'"a\\"b"')])
    assert isinstance(quoted, QuotedKey) and quoted == 'a"b' and quoted.sent == '"a\\"b"'
    long = header_key([(b"idempotency-key", b'"' + b"k" * 200 + b'"')])  # a 200-character key, 202 sent
    assert isinstance(long, QuotedKey) and long == "k" * 200 and long.sent is None  # never a key: nothing stored
    assert not isinstance(header_key([(b"idempotency-key", b"plain")]), QuotedKey)


@pytest.mark.parametrize("key", ["K", "k" * 200, '"' * 200, "a\\b-17"])
def test_keyed_bytes_covers_a_keyed_record_beyond_its_ad(key: str) -> None:
    new_ad = NewAd.model_validate(ad("Sized", priority=3))
    record = AdRecord(id="7" * 26, status=AdStatus.QUEUED, priority=3, submitted_at=utcnow(), ad=new_ad,
                      idempotency_key=key, idempotency_fingerprint=ad_fingerprint(new_ad))
    beyond = len(encode(record)) - len(new_ad.model_dump_json())
    assert beyond <= keyed_bytes([key]) <= beyond + 40  # an upper bound, not a wild one


def test_check_room_counts_the_keyed_records() -> None:
    check_room(0, 30_000, 65_536)  # the body alone fits twice
    with pytest.raises(OutboundFull) as caught:
        check_room(0, 30_000, 65_536, keyed_bytes(f"K-{i}" for i in range(100)))
    assert caught.value.details["writeBytes"] == 2 * (30_000 + keyed_bytes(f"K-{i}" for i in range(100)))


def test_at_most_keeps_the_order_the_errors_and_the_bound() -> None:
    running, peak = [0], [0]

    async def call(n: int) -> int:
        running[0] += 1
        peak[0] = max(peak[0], running[0])
        await asyncio.sleep(0.001 * (n % 3))
        running[0] -= 1
        if n == 7:
            raise GameadError("refused")
        return n * 2

    results = asyncio.run(at_most(list(range(60)), call, lambda n: GameadError(f"failed {n}"), width=5))
    assert [r if isinstance(r, int) else "error" for r in results] == [
        "error" if n == 7 else n * 2 for n in range(60)]
    assert peak[0] == 5
    assert asyncio.run(at_most([], call, lambda n: GameadError(f"failed {n}"))) == []


def test_an_own_key_another_item_derives_is_refused_naming_both() -> None:
    items = [("a", None), ("b", "K-2"), {"error": "bad"}, ("d", None), ("e", "K-0"), ("f", "K-9")]
    with pytest.raises(InvalidIdempotencyKey) as caught:
        check_collisions(items, "K")
    assert caught.value.details == {"header": "Idempotency-Key", "idempotencyKey": "K-0", "indexes": [4, 0]}
    check_collisions(items[1:3] + [("g", "K-0")], "K")  # item 0 has its own key, item 2 is an error: no one's K-n
    check_collisions(items, None)


def test_the_openapi_header_schema_takes_a_quoted_200_character_key() -> None:
    paths = create_app(load_settings(None), "nats://127.0.0.1:1").openapi()["paths"]
    for path in ("/ads", "/ads/batch"):
        (param,) = [p for p in paths[path]["post"]["parameters"] if p["name"] == "Idempotency-Key"]
        schema = param["schema"].get("anyOf", [param["schema"]])[0]
        assert "maxLength" not in schema and "pattern" not in schema, schema  # a quoted key is 2+ longer
        assert "quoted value sent may be longer than 200" in param["description"]
