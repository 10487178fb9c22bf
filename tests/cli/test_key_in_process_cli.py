"""fixsubmit38 (attack38a F3): a request whose ``Idempotency-Key`` is still in process is its own answer — 409
``idempotency_key_in_process`` with ``Retry-After`` (draft-ietf-httpapi-idempotency-key-header §2.7) — and the CLI
sends it again after the wait: not an outage, not a rejection.

The NATS boundary's mapping of JetStream's 10158 is checked on nats-py's own ``APIError``; the API's end of it
runs on a real cluster (``tests/integration/test_key_in_process_cluster.py``). The client's side is played on
httpx's in-process transport, as in ``tests/cli/test_client_retry.py``."""

from __future__ import annotations

import json
import threading

import httpx
import nats.js.errors

from gamead_cli import retry
from gamead_cli.client import ApiClient
from gamead_cli.submit.outage import store_verdict
from gamead_cli.submit.sending import send_many
from gamead_core.errors import QueueUnavailable
from gamead_core.key_in_process import IdempotencyKeyInProcess, key_in_process
from gamead_core.queue.connection import translate

ACCEPTED = {"id": "a1", "status": "queued", "priority": 3, "duplicate": False, "submittedAt": "2026-01-01T00:00:00Z"}
IN_PROCESS = {"code": "idempotency_key_in_process", "message": "a request with Idempotency-Key 'k' is in process",
              "details": {"idempotencyKey": "k", "retryAfter": 0}}


def test_jetstreams_in_process_answer_is_not_the_queue_unavailable() -> None:
    """Before: ``QueueUnavailable`` "JetStream refused the request: duplicate message id is in process (code
    10158)", answered 503 ``queue_unavailable``. nats-server's answer, through nats-py's own ``from_error``."""
    try:
        nats.js.errors.APIError.from_error({"code": 409, "err_code": 10158,
                                            "description": "duplicate message id is in process"})
    except nats.js.errors.APIError as exc:
        out = translate(exc)
    assert isinstance(out, IdempotencyKeyInProcess) and not isinstance(out, QueueUnavailable), out
    assert out.code == "idempotency_key_in_process" and "in process" in out.message
    said = key_in_process("order-1")
    assert said.details == {"idempotencyKey": "order-1", "retryAfter": 1} and "order-1" in said.message


def _scripted(first: list[httpx.Response]) -> tuple[httpx.MockTransport, list[httpx.Request]]:
    """``first`` answers in turn, then each ad accepted (``POST /ads``'s 202, or a batch's results)."""
    seen: list[httpx.Request] = []
    lock = threading.Lock()

    def handler(request: httpx.Request) -> httpx.Response:
        with lock:
            seen.append(request)
            if len(seen) <= len(first):
                return first[len(seen) - 1]
        if request.url.path == "/ads/batch":
            ads = json.loads(request.content)["ads"]
            return httpx.Response(200, json={"results": [{**ACCEPTED, "id": f"a{i}"} for i in range(len(ads))],
                                             "accepted": len(ads), "duplicates": 0, "rejected": 0})
        return httpx.Response(202, json={**ACCEPTED, "ad": {"title": "t"}})

    return httpx.MockTransport(handler), seen


def test_a_keyed_submit_answered_409_in_process_is_sent_again_after_retry_after() -> None:
    """Before: the 409 ended the submit (``ApiClientError`` ``idempotency_key_in_process``, one request)."""
    transport, seen = _scripted([httpx.Response(409, json={"error": IN_PROCESS}, headers={"Retry-After": "0"})])
    c = ApiClient("http://api.test", transport=transport, retry_for=5.0)
    assert c.submit({"title": "t"}, idempotency_key="k")["id"] == "a1"
    assert len(seen) == 2 and c.retried == 1 and all(r.headers["Idempotency-Key"] == "k" for r in seen)


def test_a_batch_ad_in_process_is_resent_neither_rejected_nor_an_outage() -> None:
    """A batch of 3 keyed ads whose every ad is answered ``idempotency_key_in_process``: resent after its
    ``retryAfter`` and accepted; no outage (before: rejected 3 ``idempotency_key_in_process``, not resent; and the
    API's 503 ``queue_unavailable`` for it began a store outage)."""
    refused = {"results": [{"error": IN_PROCESS}] * 3, "accepted": 0, "duplicates": 0, "rejected": 3}
    transport, seen = _scripted([httpx.Response(200, json=refused)])
    assert store_verdict([{"error": IN_PROCESS}] * 3) is None  # not the store's word
    assert retry.resendable(IN_PROCESS) and retry.ad_retry_after([IN_PROCESS]) is None
    c = ApiClient("http://api.test", transport=transport, retry_for=5.0)
    summary, _ = send_many(c, [{"title": f"ad {i}"} for i in range(3)], total=3, rate=0, concurrency=1,
                           idempotency_key="run", batch_size=3)
    assert summary["accepted"] == 3 and summary["rejectedByCode"] == {} and summary["outages"] == [], summary
    assert len(seen) == 2
