"""Issue 11.6 on a real API: an ``Idempotency-Key`` is scoped to its caller and bound to its ad
(draft-ietf-httpapi-idempotency-key-header; Stripe). One API with two submitter tokens and anonymous
callers allowed (``auth.enabled: false``: tokens still say who is calling), no worker."""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from gamead_core.embedded import EmbeddedNats
from tests.support import Proc, ad, start_api

TOKENS = [
    {"name": "alice", "token": "s3cret-alice", "role": "submitter"},
    {"name": "bob", "token": "s3cret-bob", "role": "submitter"},
]


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """On a NATS of its own: no worker moves these ads on while a test compares answers."""
    nats_server = EmbeddedNats(tmp_path_factory.mktemp("idem-nats")).start()
    proc: Proc
    proc, url = start_api(nats_server.url, tmp_path_factory.mktemp("idem-api"),
                          GAMEAD_AUTH__ENABLED="false", GAMEAD_AUTH__TOKENS=json.dumps(TOKENS))
    yield url
    proc.stop()
    nats_server.stop()


def client(url: str, who: str | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer s3cret-{who}"} if who else {}
    return httpx.Client(base_url=url, headers=headers, timeout=10)


def key() -> str:
    return f"order-{uuid.uuid4().hex[:8]}"


def test_two_callers_with_the_same_key_get_two_ads(api: str) -> None:
    """The issue's example: alice and bob both send ``Idempotency-Key: order-1``."""
    k = key()
    with client(api, "alice") as alice, client(api, "bob") as bob:
        a = alice.post("/ads", json=ad("Alice's Ad"), headers={"Idempotency-Key": k})
        b = bob.post("/ads", json=ad("Bob's Ad"), headers={"Idempotency-Key": k})
        assert (a.status_code, b.status_code) == (202, 202)
        assert a.json()["id"] != b.json()["id"]
        assert a.json()["duplicate"] is False and b.json()["duplicate"] is False
        assert alice.get(f"/ads/{a.json()['id']}").json()["ad"]["title"] == "Alice's Ad"
        assert bob.get(f"/ads/{b.json()['id']}").json()["ad"]["title"] == "Bob's Ad"


def test_an_exact_repeat_returns_the_first_ad(api: str) -> None:
    k = key()
    with client(api, "alice") as alice:
        first = alice.post("/ads", json=ad("Repeat Me"), headers={"Idempotency-Key": k})
        # the same ad, spelt differently: other field order, spaces around values, the default spelt out
        body = {**ad("  Repeat Me "), "priority": 3}
        spelt = json.dumps(dict(reversed(list(body.items()))), indent=2)
        again = alice.post("/ads", content=spelt, headers={"Idempotency-Key": k})
    assert first.status_code == again.status_code == 202
    assert again.json() == {**first.json(), "duplicate": True}
    assert again.headers["location"] == first.headers["location"]


def test_the_same_key_with_another_ad_is_refused(api: str) -> None:
    k = key()
    with client(api, "bob") as bob:
        first = bob.post("/ads", json=ad("Original"), headers={"Idempotency-Key": k}).json()
        reused = bob.post("/ads", json=ad("Something Else"), headers={"Idempotency-Key": k})
        assert reused.status_code == 422
        error = reused.json()["error"]
        assert error["code"] == "idempotency_key_reused"
        assert error["details"] == {"idempotencyKey": k, "adId": first["id"]}
        assert first["id"] in error["message"]
        assert bob.get(f"/ads/{first['id']}").json()["ad"]["title"] == "Original"  # untouched
        other_priority = bob.post("/ads", json=ad("Original", priority=1), headers={"Idempotency-Key": k})
        assert other_priority.status_code == 422  # the priority is part of the ad


def test_anonymous_callers_share_one_scope(api: str) -> None:
    k = key()
    with client(api, None) as one, client(api, None) as two, client(api, "alice") as alice:
        a = one.post("/ads", json=ad("Anon"), headers={"Idempotency-Key": k}).json()
        b = two.post("/ads", json=ad("Anon"), headers={"Idempotency-Key": k}).json()
        c = alice.post("/ads", json=ad("Anon"), headers={"Idempotency-Key": k}).json()
    assert b == {**a, "duplicate": True}  # the documented anonymous scope
    assert c["id"] != a["id"] and c["duplicate"] is False  # a token is a scope of its own


def test_concurrent_repeats_enqueue_once_and_are_still_compared(api: str) -> None:
    """Repeats racing the first request (before its record exists) are caught by JetStream's deduplication,
    and still compared with the first ad."""
    same, mixed = key(), key()
    bodies = [ad("Race")] * 12
    mixed_bodies = [ad("Race A") if i % 2 else ad("Race B") for i in range(12)]

    def post(k: str, body: dict[str, object]) -> httpx.Response:
        with client(api, "alice") as c:
            return c.post("/ads", json=body, headers={"Idempotency-Key": k})

    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(lambda b: post(same, b), bodies))
        mixed_answers = list(pool.map(lambda b: post(mixed, b), mixed_bodies))
    assert {r.status_code for r in answers} == {202}
    assert len({r.json()["id"] for r in answers}) == 1
    assert sum(not r.json()["duplicate"] for r in answers) == 1

    accepted = [r for r in mixed_answers if r.status_code == 202]
    refused = [r for r in mixed_answers if r.status_code == 422]
    assert len(accepted) + len(refused) == 12 and len(accepted) == 6 and len(refused) == 6
    assert sum(not r.json()["duplicate"] for r in accepted) == 1
    assert {r.json()["error"]["code"] for r in refused} == {"idempotency_key_reused"}


def _raw_post(url: str, key_field: bytes, body: bytes) -> dict[str, object]:
    """One ``POST /ads`` over a socket of its own, with the ``Idempotency-Key`` field exactly as given (httpx
    refuses a value with surrounding whitespace, which a proxy or a hand-written client may still send)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(b"POST /ads HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nIdempotency-Key:" + key_field
                  + b"\r\nConnection: close\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    head, _, payload = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 202"), answer[:300]
    return json.loads(payload)  # type: ignore[no-any-return]


def test_whitespace_around_a_key_is_not_part_of_it(api: str) -> None:
    """RFC 9110 §5.5 (an attack drill's example, session 23): ``Idempotency-Key: k `` and ``k\\t`` after ``k``
    name the first ad, not a second one with a space in its key."""
    k = key()
    body = json.dumps(ad("Spaced Key")).encode()
    first = _raw_post(api, b" " + k.encode(), body)
    again = [_raw_post(api, b" " + k.encode() + tail, body) for tail in (b" ", b"\t", b" \t  ")]
    assert first["duplicate"] is False
    assert [(a["id"], a["duplicate"]) for a in again] == [(first["id"], True)] * 3
