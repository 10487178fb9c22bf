"""review47 F4: a chunk whose sending raised (a bug: here the API's in-process double raising on the resend) after a
first answer counted every ad of the chunk ``rejected not_sent``, those the first answer had already settled too:
an ad counted twice, the figures no longer summing to the ads sent. Now only the ads still out are. httpx's
in-process transport (as test_submit_resending)."""

from __future__ import annotations

import threading

import httpx

from gamead_cli.client import ApiClient
from gamead_cli.submit.sending import send_many
from tests.support import ad
from tests.unit.test_submit_resending import ACCEPTED

REFUSED = {"error": {"code": "queue_unavailable", "message": "NATS did not answer in time",
                     "details": {"retryAfter": 0.01}}}


def test_a_chunk_that_raised_after_a_first_answer_counts_each_ad_once() -> None:
    lock, calls = threading.Lock(), []

    def api(request: httpx.Request) -> httpx.Response:
        with lock:
            calls.append(request.url.path)
        if len(calls) > 1:  # the resend of the two refused: a bug past the first answer
            raise RuntimeError("a bug in the sending")
        results = [{**ACCEPTED, "id": "a1"}, {**ACCEPTED, "id": "a2"}, REFUSED, REFUSED]
        return httpx.Response(200, json={"results": results, "accepted": 2, "duplicates": 0, "rejected": 2})

    client = ApiClient("http://api.test", transport=httpx.MockTransport(api), retry_for=5.0)
    summary, _ = send_many(client, [ad(f"t{i}") for i in range(4)], total=4, rate=0, concurrency=1,
                           idempotency_key=None, batch_size=4, keep_items=True)
    assert len(calls) == 2, calls  # the resend was tried (the exception path taken)
    assert summary["sent"] == 4 and summary["accepted"] == 2, summary
    assert summary["rejectedByCode"] == {"not_sent": 2}, summary  # before: 4 (the two accepted counted again)
    assert [item["outcome"] for item in summary["items"]] == ["accepted", "accepted", "rejected", "rejected"], summary
