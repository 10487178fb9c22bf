"""API messages that misled a reviewer (brief small12 items 4 and 5), against a real API on its own NATS:

4. A non-ASCII ``Idempotency-Key`` (``ключ😀``) came back garbled in the 422 message (the header's latin-1
   reading). Since drill attack25 finding 5 a key is printable ASCII on every path: a non-ASCII one is refused
   (400 ``invalid_idempotency_key``), its message showing the key as sent (its bytes as UTF-8, an invalid byte as
   U+FFFD); and a key names the same ad in the header as in a batch item.
5. A body holding a lone surrogate ``"\\ud800"`` got 400 "unexpected end of hex escape": the message now names
   the fault, an unpaired UTF-16 surrogate, and where it is; a proper pair still goes through.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from gamead_core.embedded import EmbeddedNats
from tests.support import SAMPLE_AD, start_api


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    server = EmbeddedNats(tmp_path_factory.mktemp("nats-honest")).start()
    try:
        api, url = start_api(server.url, tmp_path_factory.mktemp("logs-honest"))
        try:
            with httpx.Client(base_url=url, timeout=30) as client:
                yield client
        finally:
            api.stop(timeout=10)
    finally:
        server.stop()


@pytest.mark.parametrize("sent, shown, point", [
    ("ключ-😀".encode(), "ключ-😀", "U+043A"), (b"caf\xc3\xa9-1", "café-1", "U+00E9"),
    (b"bad\xff-key", "bad\ufffd-key", "U+FFFD"), (b"tab\there", "tab\there", "U+0009")],
    ids=["cyrillic-emoji", "latin", "not-utf8", "tab"])
def test_a_key_outside_printable_ascii_is_refused_on_both_paths(
        http: httpx.Client, sent: bytes, shown: str, point: str) -> None:
    """Drill attack25 finding 5: the API took a raw UTF-8 ``Idempotency-Key`` (202) that ``gamead submit`` could
    not send (httpx: UnicodeEncodeError, exit 1). One rule now holds on every path (draft-ietf-httpapi-idempotency-
    key-header: a Structured Field string, printable ASCII): the header and a batch item's key outside it get 400
    ``invalid_idempotency_key`` (the item: its own error), the message naming the key as sent and the character."""
    single = http.post("/ads", json=SAMPLE_AD, headers={"Idempotency-Key": sent})
    assert single.status_code == 400, single.text
    error = single.json()["error"]
    assert error["code"] == "invalid_idempotency_key" and error["details"] == {"header": "Idempotency-Key"}, error
    assert repr(shown) in error["message"] and point in error["message"], error
    batch = http.post("/ads/batch", json={"ads": [{**SAMPLE_AD, "idempotencyKey": shown}, SAMPLE_AD]})
    assert batch.status_code == 200, batch.text
    item, fine = batch.json()["results"]
    assert item["error"]["code"] == "invalid_idempotency_key" and point in item["error"]["message"], item
    assert "id" in fine, fine  # the other ad is queued


def test_an_ascii_key_names_the_same_ad_in_a_header_and_in_a_batch_item(http: httpx.Client) -> None:
    """The header's bytes were read as latin-1 for the key's identity, a batch item's key as the JSON text: the same
    key named two different ads, so a batch resent after a single submit queued the ad twice."""
    first = http.post("/ads", json=SAMPLE_AD, headers={"Idempotency-Key": "key 7~!"})
    assert first.status_code == 202, first.text
    batch = http.post("/ads/batch", json={"ads": [{**SAMPLE_AD, "idempotencyKey": "key 7~!"}]})
    assert batch.status_code == 200, batch.text
    result = batch.json()["results"][0]
    assert result["id"] == first.json()["id"] and result["duplicate"] is True, result
    reused = http.post("/ads", json={**SAMPLE_AD, "title": "Another"}, headers={"Idempotency-Key": "key 7~!"})
    assert reused.status_code == 422 and reused.json()["error"]["details"]["idempotencyKey"] == "key 7~!", reused.text


def _title_body(escaped_title: str) -> bytes:
    """The sample ad's JSON with ``escaped_title`` written into it as is (JSON escapes kept)."""
    text = json.dumps({**SAMPLE_AD, "title": "@@"})
    return text.replace('"@@"', f'"{escaped_title}"').encode()


@pytest.mark.parametrize("title, escape", [
    ("\\ud800", "\\ud800"),  # a high half, then the end of the string
    ("Go \\ud83d now", "\\ud83d"),  # a high half, then text
    ("\\udc00", "\\udc00"),  # a low half alone
    ("\\ud800\\u0041", "\\ud800"),  # a high half, then no low one
    ("\\\\ud800 \\udfff", "\\udfff"),  # an escaped backslash is no escape; the low half after it is
])
@pytest.mark.parametrize("path", ["/ads", "/ads/batch"])
def test_a_lone_surrogate_is_named_as_such(http: httpx.Client, title: str, escape: str, path: str) -> None:
    body = _title_body(title)
    if path == "/ads/batch":
        body = b'{"ads": [' + body + b"]}"
    resp = http.post(path, content=body, headers={"Content-Type": "application/json"})
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    at = body.index(escape.encode(), body.index(b'"title"'))
    assert error["code"] == "invalid_json"
    assert error["message"] == (f"the body is not valid JSON: {escape} at byte {at} is half of a UTF-16 surrogate "
                                "pair without its other half (an unpaired surrogate is no character; RFC 8259 "
                                "§8.2)"), error


@pytest.mark.parametrize("title", ["Go \\ud83d\\ude00 now", "\\\\ud800 is text"])
def test_a_surrogate_pair_or_an_escaped_backslash_goes_through(http: httpx.Client, title: str) -> None:
    resp = http.post("/ads", content=_title_body(title), headers={"Content-Type": "application/json"})
    assert resp.status_code == 202, resp.text


def test_other_bad_escapes_keep_the_parsers_reason(http: httpx.Client) -> None:
    resp = http.post("/ads", content=_title_body("\\u12"), headers={"Content-Type": "application/json"})
    assert resp.status_code == 400 and "surrogate" not in resp.text, resp.text


def _with_value(path: str, value: str) -> bytes:
    """A body for ``path`` whose ad's duration (or the override's forSeconds) is ``value``, written as is."""
    if path == "/v1/scale/override":
        return f'{{"replicas": 1, "forSeconds": {value}}}'.encode()
    ad = json.dumps({**SAMPLE_AD, "duration": "@@"}).replace('"@@"', value)
    return f'{{"ads": [{ad}]}}'.encode() if path == "/ads/batch" else ad.encode()


@pytest.mark.parametrize("word", ["NaN", "Infinity", "-Infinity"])
@pytest.mark.parametrize("path", ["/ads", "/ads/batch", "/v1/scale/override"])
def test_nan_or_infinity_is_not_json_on_every_route(http: httpx.Client, word: str, path: str) -> None:
    """A drill's ``"duration": NaN`` got 422 ``validation_failed`` ("Input should be a valid integer") from
    ``POST /ads`` but 400 ``invalid_json`` from ``POST /ads/batch``: pydantic's parser takes NaN, orjson does not.
    No JSON number is NaN or Infinity (RFC 8259 §6): every route says so, and where."""
    body = _with_value(path, word)
    resp = http.post(path, content=body, headers={"Content-Type": "application/json"})
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert error["code"] == "invalid_json", error
    at = body.index(word.encode())
    assert error["message"] == (f"the body is not valid JSON: {word} at byte {at} is not a JSON number (JSON has "
                                "no NaN or Infinity; RFC 8259 §6)"), error


@pytest.mark.parametrize("value", ["9" * 5000, "-" + "9" * 5000, "9" * 400, "1e400"],
                         ids=["5000-digits", "minus-5000-digits", "400-digits", "1e400"])
@pytest.mark.parametrize("path", ["/ads", "/ads/batch", "/v1/scale/override"])
def test_a_number_past_a_doubles_range_is_one_sentence_on_every_route(http: httpx.Client, value: str,
                                                                      path: str) -> None:
    """words55 F2: a 5,000-digit number was "number out of range at line 1 column 4315" from ``POST /ads``
    (pydantic's parser) and "number is infinity when parsed as double: line 1 column 14 (char 13)" from ``POST
    /ads/batch`` (orjson's): one rule (a double's range), one sentence naming the number's byte, one code."""
    body = _with_value(path, value)
    resp = http.post(path, content=body, headers={"Content-Type": "application/json"})
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    shown = value if len(value) <= 40 else f"{value[:40]}…, {len(value):,} characters"
    assert (error["code"], error["message"]) == (
        "invalid_json", f"the body is not valid JSON for this API: the number at byte {body.index(value.encode())} "
                        f"({shown}) is past the range this API reads (a double's: ±1.8e308)"), error


@pytest.mark.parametrize("path", ["/ads", "/ads/batch"])
def test_a_body_nested_too_deep_is_worded_the_same_by_both_parsers(http: httpx.Client, path: str) -> None:
    """``POST /ads`` said "recursion limit exceeded", ``POST /ads/batch`` "depth limit exceeded" (pydantic's and
    orjson's words for the same refusal): one message now, with where each parser stopped."""
    body = b'{"ads": ' + b"[" * 3000 + b"]" * 3000 + b"}"
    resp = http.post(path, content=body, headers={"Content-Type": "application/json"})
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert error["code"] == "invalid_json", error
    assert error["message"].startswith("the body nests arrays and objects deeper than this API reads (line 1 "
                                       "column "), error


@pytest.mark.parametrize("path", ["/ads", "/ads/batch"])
@pytest.mark.parametrize("body, said", [
    (b"", "it is empty"), (b" \r\n\t", "it is only whitespace"),
    ("\ufeff".encode() + json.dumps(SAMPLE_AD).encode(), "it begins with a byte-order mark (U+FEFF, bytes EF BB BF), "
     "which JSON text sent over a network must not have (RFC 8259 §8.1): send it without")],
    ids=["empty", "whitespace", "bom"])
def test_an_empty_body_or_one_after_a_byte_order_mark_is_said_so(http: httpx.Client, path: str, body: bytes,
                                                                   said: str) -> None:
    """attack47 F9: a BOM before the JSON was ``expected value at line 1 column 1``, an empty body ``EOF while
    parsing a value at line 1 column 0`` (the parser's words)."""
    if path == "/ads/batch" and body.startswith("\ufeff".encode()):
        body = "\ufeff".encode() + json.dumps({"ads": [SAMPLE_AD]}).encode()
    resp = http.post(path, content=body, headers={"Content-Type": "application/json"})
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert (error["code"], error["message"]) == ("invalid_json", f"the body is not valid JSON: {said}"), error
