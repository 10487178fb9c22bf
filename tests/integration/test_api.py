"""The HTTP API on a real NATS, with a real worker behind it."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.support import SAMPLE_AD, ad, wait_terminal

SAMPLE_CURL_BODY = """{
  "title": "Dragon Kingdom: Rise to Power",
  "description": "Build your kingdom, train your dragons, and conquer new territories!",
  "genre": "Strategy",
  "targetAudience": ["18-34", "Strategy Gamers"],
  "visualElements": ["Dragons", "Castle", "Battle Scenes"],
  "callToAction": "Download Now & Claim 1000 Free Gems!",
  "duration": 30,
  "priority": 2
}"""


def test_the_spec_sample_curl_works_verbatim(api_url: str, client: httpx.Client) -> None:
    port = api_url.rsplit(":", 1)[1]
    curl = shutil.which("curl")
    if curl:  # exactly the spec's command line: no Content-Type header, -d sends form encoding
        out = subprocess.run(
            [curl, "-s", "-i", "-X", "POST", f"http://localhost:{port}/ads", "-d", SAMPLE_CURL_BODY],
            capture_output=True, text=True, timeout=30, check=True,
        ).stdout
        head, _, body = out.partition("\n\n")  # text mode turned CRLF into LF
        status_line = head.splitlines()[0]
    else:  # the same bytes and headers curl would send
        resp = client.post("/ads", content=SAMPLE_CURL_BODY,
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
        status_line, body, head = f"HTTP/1.1 {resp.status_code}", resp.text, str(resp.headers)
    assert " 202" in status_line
    accepted = json.loads(body)
    assert accepted["status"] == "queued" and accepted["priority"] == 2
    assert f"/ads/{accepted['id']}" in head.lower()
    record = wait_terminal(client, accepted["id"])
    assert record["status"] == "completed"
    assert record["ad"]["title"] == SAMPLE_AD["title"]
    assert 0 <= record["analysis"]["effectivenessScore"] <= 10


def test_submit_to_completed_round_trip(client: httpx.Client) -> None:
    resp = client.post("/ads", json=ad("Round Trip Racer", priority=4))
    assert resp.status_code == 202
    body = resp.json()
    assert set(body) >= {"id", "status", "priority", "submittedAt"}
    assert resp.headers["location"] == f"/ads/{body['id']}"
    record = wait_terminal(client, body["id"])
    assert record["status"] == "completed"
    assert record["attempts"] == 1
    assert record["workerId"] == "session-worker"
    analysis = record["analysis"]
    assert analysis["strengths"] or analysis["improvementSuggestions"]
    assert {c["name"] for c in analysis["components"]} >= {"call_to_action", "duration_fit"}
    # the same ad always gets the same analysis
    again = wait_terminal(client, client.post("/ads", json=ad("Round Trip Racer", priority=4)).json()["id"])
    assert again["analysis"] == analysis


def test_unknown_ad_is_a_json_404(client: httpx.Client) -> None:
    resp = client.get("/ads/does-not-exist")
    assert resp.status_code == 404
    assert resp.json()["error"]["code"] == "not_found"
    assert "does-not-exist" in resp.json()["error"]["message"]


def test_list_filters_by_status_and_priority(client: httpx.Client) -> None:
    tag = uuid.uuid4().hex[:8]
    ids = [client.post("/ads", json=ad(f"List {tag} {p}", priority=p)).json()["id"] for p in (1, 5, 5)]
    for ad_id in ids:
        wait_terminal(client, ad_id)
    page = client.get("/ads", params={"priority": 5, "status": "completed", "limit": 500}).json()
    mine = [r for r in page["items"] if tag in r["ad"]["title"]]
    assert {r["id"] for r in mine} == set(ids[1:])
    assert all(r["priority"] == 5 and r["status"] == "completed" for r in page["items"])
    assert page["count"] == len(page["items"])
    newest = client.get("/ads", params={"limit": 2}).json()["items"]  # the newest two, newest first
    assert len(newest) == 2 and newest[0]["submittedAt"] >= newest[1]["submittedAt"]
    assert [r["id"] for r in client.get("/ads", params={"status": "completed", "limit": 500}).json()["items"]
            if tag in r["ad"]["title"]] == ids[::-1]


def test_repeated_idempotency_key_returns_the_first_id(client: httpx.Client) -> None:
    key = f"order-{uuid.uuid4()}"
    first = client.post("/ads", json=ad("Idem"), headers={"Idempotency-Key": key})
    second = client.post("/ads", json=ad("Idem"), headers={"Idempotency-Key": key})
    assert first.status_code == second.status_code == 202
    assert first.json()["id"] == second.json()["id"]
    assert first.json()["duplicate"] is False and second.json()["duplicate"] is True
    assert wait_terminal(client, first.json()["id"])["attempts"] == 1


@pytest.mark.parametrize(
    ("body", "status", "code", "mentions"),
    [
        (b'{"title": "x",', 400, "invalid_json", "not valid JSON"),
        (b"[1, 2]", 400, "invalid_json", "JSON object"),
        (b"", 400, "invalid_json", "not valid JSON"),
        (json.dumps({**SAMPLE_AD, "title": ""}).encode(), 422, "validation_failed", "title"),
        (json.dumps({**SAMPLE_AD, "priority": 9}).encode(), 422, "validation_failed", "priority"),
        (json.dumps({**SAMPLE_AD, "duration": "long"}).encode(), 422, "validation_failed", "duration"),
        (json.dumps({**SAMPLE_AD, "targetAudience": ["a"] * 51}).encode(), 422, "validation_failed", "targetAudience"),
        (json.dumps({**SAMPLE_AD, "budget": 100}).encode(), 422, "validation_failed", "unknown field 'budget'"),
        (json.dumps({k: v for k, v in SAMPLE_AD.items() if k != "genre"}).encode(), 422, "validation_failed", "genre"),
        (b'{"title": "' + b"x" * 70_000 + b'"}', 413, "payload_too_large", "limit"),
    ],
)
def test_bad_input_gets_its_status_and_code(
    client: httpx.Client, body: bytes, status: int, code: str, mentions: str
) -> None:
    resp = client.post("/ads", content=body)
    assert resp.status_code == status
    error = resp.json()["error"]
    assert error["code"] == code
    assert mentions in error["message"]
    assert "Traceback" not in resp.text


def test_validation_errors_carry_field_paths(client: httpx.Client) -> None:
    resp = client.post("/ads", json={**SAMPLE_AD, "visualElements": ["ok", ""], "duration": 0})
    details = resp.json()["error"]["details"]
    assert {d["loc"] for d in details} == {"visualElements.1", "duration"}


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/nope", 404, "not_found"),
        ("DELETE", "/ads", 405, "method_not_allowed"),
        ("GET", "/ads?priority=0", 422, "validation_failed"),
        ("GET", "/ads?status=lost", 422, "validation_failed"),
    ],
)
def test_other_errors_are_json_too(client: httpx.Client, method: str, path: str, status: int, code: str) -> None:
    resp = client.request(method, path)
    assert resp.status_code == status
    assert resp.json()["error"]["code"] == code


def test_probes_and_docs(client: httpx.Client) -> None:
    health = client.get("/healthz").json()
    assert health["status"] == "ok" and health["nats"]["readerAlive"] is True
    assert 0 <= health["nats"]["unsentBytes"] <= health["nats"]["maxPendingBytes"]
    ready = client.get("/readyz").json()
    assert ready == {"status": "ready", "checks": {"nats": "ok", "topology": "ok", "storage": "ok",
                                                  "redis": "disabled", "reads": "ok", "registry": "ok",
                                                  "tracing": "disabled", "clock": "ok"},
                     "differs": []}
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    schema = spec["paths"]["/ads"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert "callToAction" in schema["properties"]


@pytest.mark.parametrize(("field", "value", "mentions"), [
    ("title", "\u200b\ufeff", "shows"),  # only invisible characters: was 202 and analysed
    ("genre", "   ", "not whitespace"),
    ("callToAction", "Buy\x00now", "U+0000"),  # a NUL inside: was 202
    ("visualElements", ["ok", "\x1b[31mred"], "U+001B"),  # a terminal escape in a tag
])
def test_an_ad_text_must_show_something_and_hold_no_control_character(
        client: httpx.Client, field: str, value: object, mentions: str) -> None:
    for path, body in (("/ads", {**SAMPLE_AD, field: value}), ("/ads/batch", {"ads": [{**SAMPLE_AD, field: value}]})):
        resp = client.post(path, json=body)
        error = (resp.json()["results"][0] if path == "/ads/batch" else resp.json())["error"]
        assert error["code"] == "validation_failed" and mentions in error["message"], (path, resp.text)


def test_a_chunked_body_over_the_cap_names_the_setting_of_its_route(client: httpx.Client) -> None:
    def chunks(total: int) -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        yield b'{"ads": ["'
        for _ in range(total // 65536):
            yield b"x" * 65536

    for path, total, setting in (("/ads", 100_000, "api.max_body_bytes"),
                                 ("/ads/batch", 3 * 1024 * 1024, "api.batch_max_body_bytes")):
        resp = client.post(path, content=chunks(total))
        assert resp.status_code == 413 and resp.json()["error"]["code"] == "payload_too_large"
        assert f"({setting})" in resp.json()["error"]["message"]


@pytest.mark.parametrize("path", ["/ads/", "/v1/dlq/replay/"])
def test_a_trailing_slash_is_a_json_404_not_a_redirect(client: httpx.Client, path: str) -> None:
    resp = client.post(path, json={}, follow_redirects=False)
    assert resp.status_code == 404 and resp.json()["error"]["code"] == "not_found"
    assert "location" not in resp.headers


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/openapi.json", "/ads?limit=2", "/ads/01m8n9yn14df8p4qjad0cnvqad",
                                  "/v1/stats", "/v1/workers", "/v1/dlq?limit=1", "/v1/audit?limit=1", "/metrics"])
def test_head_answers_as_get_without_a_body(client: httpx.Client, path: str) -> None:
    """The reviewer's figure: ``HEAD /ads`` answered 405 (every FastAPI GET route did; Starlette's own routes
    answer HEAD). Now HEAD gets GET's status and headers, and no body (RFC 9110 §9.3.2)."""
    get, head = client.get(path), client.head(path)
    assert head.status_code == get.status_code != 405, (path, head.status_code)
    assert head.content == b"" and head.headers["content-type"] == get.headers["content-type"]
    if path in ("/healthz", "/openapi.json"):  # the same answer: the same length, announced
        assert int(head.headers["content-length"]) == len(get.content)


def test_head_on_a_write_only_path_answers_as_get_and_allow_lists_head_with_get(client: httpx.Client) -> None:
    for path in ("/v1/dlq/replay", "/v1/scale/override", "/ads/batch"):
        assert client.head(path).status_code == client.get(path).status_code >= 400, path
    assert client.options("/ads").headers["allow"] == "GET, HEAD, OPTIONS, POST"


@pytest.mark.parametrize("header", ["Idempotency-Key", "Authorization"])
def test_a_header_of_one_value_sent_twice_is_refused_and_nothing_is_queued(client: httpx.Client, header: str) -> None:
    """Two ``Idempotency-Key`` headers silently used the first: a retry carrying the other one made a second ad.
    Refused (400 ``duplicate_header``, naming the header); so is a second ``Authorization``."""
    key = f"dup-{uuid.uuid4().hex}"
    values = [(f"{key}-a", f"{key}-b")] if header == "Idempotency-Key" else [("Bearer one", "Bearer two")]
    resp = client.post("/ads", json=ad("Twice Told"), headers=[(header, v) for v in values[0]])
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert error["code"] == "duplicate_header" and error["details"] == {"header": header}
    assert header in error["message"]
    if header == "Idempotency-Key":  # the refused request queued nothing under either key
        first = client.post("/ads", json=ad("Twice Told"), headers={header: f"{key}-a"})
        assert first.status_code == 202 and first.json()["duplicate"] is False


def test_an_x_request_id_sent_twice_names_no_request_a_fresh_one_is_answered(client: httpx.Client) -> None:
    """An operator request's ``X-Request-Id`` is kept when well-formed; sent twice, neither is (the trail would
    have carried the last one): a fresh id is answered and recorded."""
    resp = client.post("/v1/dlq/purge", json={"all": True},  # refused (no confirm): recorded with its id
                       headers=[("X-Request-Id", "change-1"), ("X-Request-Id", "change-2")])
    assert resp.status_code == 400 and resp.headers["x-request-id"] not in ("change-1", "change-2")
    once = client.post("/v1/dlq/purge", json={"all": True}, headers={"X-Request-Id": "change-3"})
    assert once.headers["x-request-id"] == "change-3"


@pytest.mark.parametrize("body", [b'{"title": "\xff\xfe"}', b"\xff\xfe", b'{"ads": [{"title": "caf\xe9"}]}'],
                         ids=["inside-a-string", "whole-body", "latin-1-in-a-batch"])
def test_a_body_that_is_not_utf8_gets_one_code_and_one_message_on_every_route(client: httpx.Client,
                                                                               body: bytes) -> None:
    """``POST /ads`` said "invalid unicode code point", ``POST /ads/batch`` "str is not valid UTF-8: surrogates
    not allowed" for the same bytes: now both (and the operator routes) say the body is not UTF-8, where."""
    errors = {path: client.post(path, content=body).json()["error"] for path in ("/ads", "/ads/batch", "/v1/dlq/import")}
    assert {e["code"] for e in errors.values()} == {"invalid_json"}
    assert len({e["message"] for e in errors.values()}) == 1, errors
    assert "not UTF-8" in errors["/ads"]["message"]


def test_a_write_route_that_takes_no_body_refuses_one_instead_of_ignoring_it(client: httpx.Client) -> None:
    """A reviewer's ``{"dryRun": true}`` to ``POST /v1/doctor/repair`` started a real repair (the route read no
    body), and ``DELETE /v1/scale/override`` took ``[[[[`` with 200. A route that takes no body now accepts
    none or ``{}`` and refuses anything else as every body is refused; nothing is started."""
    jobs_before = client.get("/v1/jobs").json()["count"]
    refused = [
        ("POST", "/v1/doctor/repair", b'{"dryRun": true}', 422, "validation_failed"),
        ("POST", "/v1/doctor/repair", b"\xff\xfe", 400, "invalid_json"),
        ("POST", "/v1/doctor/repair", b"[" * 10_000, 400, "invalid_json"),
        ("POST", "/v1/doctor/repair", b"   ", 400, "invalid_json"),
        ("DELETE", "/v1/scale/override", b"[[[[", 400, "invalid_json"),
        ("POST", "/v1/jobs/" + "0" * 26 + "/cancel", b'{"now": 1}', 422, "validation_failed"),
    ]
    for method, path, body, status, code in refused:
        resp = client.request(method, path, content=body, headers={"Content-Type": "application/json"})
        assert (resp.status_code, resp.json()["error"]["code"]) == (status, code), (method, path, resp.text)
    assert client.get("/v1/jobs").json()["count"] == jobs_before  # no repair was started
    assert client.request("DELETE", "/v1/scale/override", content=b"{}").status_code == 200
