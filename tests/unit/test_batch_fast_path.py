"""Issue 14.3/14.4 without servers: the one-call batch validation (``routes_batch.validated``) accepts exactly the
batches whose every item the per-item reading (``parse_batch`` + ``parse_item``) accepts without a key, with the
same ads, and refuses every request the per-item reading refuses with the same error; and the ad texts' fast
check (``str.isprintable``) decides as the two regex scans did, for every code point."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gamead_core.api.errors import ApiError
from gamead_core.api.routes_batch import parse_batch, parse_item, validated
from gamead_core.models import _VISIBLE, _stripped
from gamead_core.safe_text import REFUSED
from tests.support import ad

MAX_BYTES = 1_000_000

#: one of each kind of item: valid ads, an ad with a key, and each way an item can be refused
ITEMS: list[Any] = [
    ad("Fine"),
    ad("  Padded title  ", priority=1, targetAudience=[" teens ", "adults"]),
    {**ad("Keyed"), "idempotencyKey": "k-1"},
    {**ad("Keyed too"), "idempotencyKey": "k" * 200},
    {**ad("Bad key"), "idempotencyKey": ""},
    {**ad("Null key"), "idempotencyKey": None},
    {**ad("Long key"), "idempotencyKey": "k" * 201},
    {**ad("Spaced key"), "idempotencyKey": "k "},
    {**ad("Number key"), "idempotencyKey": 7},
    {"ad": ad("Nested"), "key": "k-2"},
    {**ad("Too long"), "duration": 9999},
    {**ad("Bool"), "duration": True},
    {**ad("Float"), "duration": 30.0},
    {**ad("Unknown"), "colour": "red"},
    {**ad("Blank"), "genre": "\u200b "},
    {**ad("Control"), "title": "a\x07b"},
    {k: v for k, v in ad("Missing").items() if k != "genre"},
    {**ad("Not a list"), "visualElements": "x"},
    {**ad("Tag too long"), "targetAudience": ["x" * 101]},
    "not an ad",
    None,
    7,
    [],
]


def by_item(body: bytes, batch_max: int = 500) -> list[Any] | ApiError:
    """What the per-item reading (the path before the one-call check) makes of ``body``."""
    try:
        return [parse_item(item) for item in parse_batch(body, batch_max, MAX_BYTES)]
    except ApiError as exc:
        return exc


def check(items: list[Any] | Any, batch_max: int = 500) -> None:
    body = orjson.dumps({"ads": items}) if isinstance(items, list) else orjson.dumps(items)
    slow = by_item(body, batch_max)
    try:
        fast = validated(body, batch_max, MAX_BYTES)
    except ApiError as exc:  # only the limits checked before and after the one call
        assert isinstance(slow, ApiError) and (exc.status, exc.code, str(exc)) == (slow.status, slow.code, str(slow))
        return
    if fast is None:
        # not all valid: the route reads it item by item, as before
        assert isinstance(slow, ApiError) or any(not isinstance(r, tuple) for r in slow)
        return
    assert not isinstance(slow, ApiError)
    assert all(isinstance(r, tuple) for r in slow)
    ads, keys = fast
    assert ads == [r[0] for r in slow]  # the same ads, field by field (stripped texts, defaults)
    assert (keys or [None] * len(ads)) == [r[1] for r in slow]  # the same keys


def test_a_batch_of_valid_ads_is_read_in_one_call_with_the_same_ads() -> None:
    items = [ITEMS[0], ITEMS[1]] * 5
    checked = validated(orjson.dumps({"ads": items}), 500, MAX_BYTES)
    assert checked is not None and checked[1] is None  # no key anywhere: the ads alone
    ads = checked[0]
    assert [a.title for a in ads] == ["Fine", "Padded title"] * 5
    assert ads[1].target_audience == ["teens", "adults"] and ads[0].priority == 3
    check(items)


def test_a_batch_with_keys_is_read_in_one_call_with_each_ads_key() -> None:
    items = [ITEMS[0], ITEMS[2], ITEMS[3], ITEMS[1]]
    checked = validated(orjson.dumps({"ads": items}), 500, MAX_BYTES)
    assert checked is not None and checked[1] == [None, "k-1", "k" * 200, None]
    assert [a.title for a in checked[0]] == ["Fine", "Keyed", "Keyed too", "Padded title"]
    check(items)
    # the word in a text only: read with keys, none found
    assert validated(orjson.dumps({"ads": [ad("idempotencyKey")]}), 500, MAX_BYTES)[1] == [None]  # type: ignore[index]
    # a key spelt with an escape is not seen by the byte search: the batch is read item by item, key and all
    escaped = orjson.dumps({"ads": [{**ad("Escaped"), "idempotencyKey": "k-9"}]}).replace(
        b'"idempotencyKey"', b'"idempotency\\u004bey"')
    assert validated(escaped, 500, MAX_BYTES) is None
    assert parse_item(parse_batch(escaped, 500, MAX_BYTES)[0])[1] == "k-9"  # type: ignore[index]


@pytest.mark.parametrize("k", range(4, len(ITEMS)))
def test_each_kind_of_refused_item_sends_the_batch_item_by_item(k: int) -> None:
    for items in ([ITEMS[0], ITEMS[k], ITEMS[1]], [ITEMS[2], ITEMS[k]]):
        assert validated(orjson.dumps({"ads": items}), 500, MAX_BYTES) is None
        check(items)


def test_whole_request_errors_are_the_same() -> None:
    for body in ({"ads": []}, {"ads": {}}, {"ads": [ad("x")], "extra": 1}, [ad("x")], {"ads": [ad("x")] * 6}):
        check(body, batch_max=5)
    for raw in (b"{nope", b"", b'{"ads": [1]} x', b"\xef\xbb\xbf" + orjson.dumps({"ads": [ad("x")]}),
                b'{"ads": [{"title": "\\ud800"}]}'):
        with pytest.raises(ApiError) as slow:
            parse_batch(raw, 5, MAX_BYTES)
        assert validated(raw, 5, MAX_BYTES) is None  # then parse_batch answers, as before
        assert slow.value.code == "invalid_json"
    with pytest.raises(ApiError) as too_big:  # the size is checked before anything is parsed
        validated(b" " * 101, 5, 100)
    assert too_big.value.code == "payload_too_large"


@settings(max_examples=150)
@given(st.lists(st.sampled_from(ITEMS), min_size=1, max_size=8),
       st.lists(st.text(max_size=12), min_size=1, max_size=8))
def test_any_mix_reads_the_same_both_ways(items: list[Any], titles: list[str]) -> None:
    """Random mixes, and random titles (whitespace, invisible and control characters included)."""
    mixed = [({**item, "title": title} if isinstance(item, dict) else item) for item, title in zip(items, titles)]
    check(mixed + items[len(titles):])


def _by_regex(text: str) -> str | None:
    text = text.strip()
    if _VISIBLE.search(text) is None or REFUSED.search(text):
        return None
    return text


def _by_model(text: str) -> str | None:
    try:
        return _stripped(text, None)
    except ValueError:
        return None


def test_the_printable_fast_check_decides_as_the_regex_scans_for_every_code_point() -> None:
    """The fast check returns early only for a printable text; a printable code point other than the space is
    one the regex scans find visible and not a control character, so they would have kept the text as well."""
    printable = [chr(cp) for cp in range(0x110000) if chr(cp).isprintable()]
    assert "".join(c for c in printable if c != " " and not _by_regex(c)) == ""
    for text in ("", " ", "\u200b", "a\x07", "\t a \n", "\u00a0x", "x\ufeff", "  ok  ", "\u2028y",
                 "a\x9b", "a\u202e", "\u2066b"):
        assert _by_model(text) == _by_regex(text), repr(text)


@pytest.mark.parametrize("status", [200, 202, 204, 304, 404, 101])
@pytest.mark.parametrize("headers", [None, {}, {"Location": "/ads/x", "X-Cache": "hit"},
                                     {"Content-Type": "application/problem+json"}, {"content-length": "3"}])
def test_the_json_response_is_starlettes_byte_for_byte(status: int, headers: dict[str, str] | None) -> None:
    from starlette.responses import Response

    from gamead_core.api.responses import JsonResponse

    ours = JsonResponse(b'{"id":"x"}', status, headers)
    theirs = Response(b'{"id":"x"}', status, headers, media_type="application/json")
    assert (ours.status_code, ours.body, ours.raw_headers) == (theirs.status_code, theirs.body, theirs.raw_headers)


def test_a_batch_key_with_a_space_at_an_end_is_refused_as_the_header_could_not_carry_it() -> None:
    """The header's ``k `` is the key ``k`` (RFC 9110 §5.5), so a batch item's ``k `` (or `` k``) could name
    another ad than the same key sent again as a header: refused, saying why (session 23)."""
    for key in ("k ", " k"):
        item = parse_item({**ad("Spaced"), "idempotencyKey": key})
        assert isinstance(item, dict) and item["error"]["code"] == "invalid_idempotency_key", item  # the one rule's code
        assert "begin or end with a space" in item["error"]["message"]
    ok = parse_item({**ad("Inner"), "idempotencyKey": "k 1"})
    assert not isinstance(ok, dict) and ok[1] == "k 1"
