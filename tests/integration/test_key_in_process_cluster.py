"""fixsubmit38 (attack38a F3): the same ``Idempotency-Key`` sent concurrently to two API nodes of a real 3-node
JetStream cluster (R3 streams) is never answered 503 ``queue_unavailable``.

JetStream answers a publish whose ``Nats-Msg-Id`` a replicated stream is still storing for another publish with
``duplicate message id is in process`` (10158); the API answered it 503 ``queue_unavailable`` ("the queue is
unavailable", which ``gamead submit`` takes for an outage). attack38a: 30 rounds of 10 concurrent ``POST /ads``
with one key (5 a node), 5 rounds had 1-4 such 503s, with the queue healthy. Now such a request is 409
``idempotency_key_in_process`` with ``Retry-After`` (draft-ietf-httpapi-idempotency-key-header §2.7), and sent
again after it gets the first request's ad; every round still queues exactly one ad. The batch route's keyed ads
go the same path: one such ad's result is that 409's error, resent by ``gamead submit`` (never a 503 for it)."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.cluster import NatsCluster, fresh_cluster
from tests.support import RESENDS, ad, start_api
from tests.waits import until

R3 = {"GAMEAD_QUEUE__REPLICAS": "3", "GAMEAD_NATS__REQUEST_TIMEOUT": "2"}
ROUNDS, AT_ONCE = 30, 10


def _limits(connections: int) -> httpx.Limits:
    """Idle connections dropped after 2 s, before the API's own ``api.keep_alive_timeout`` (5 s) closes them. httpx's
    default is 5 s too: a round sent after a resend's ~5 s of 1 s waits (Retry-After) went out on connections the API
    was closing for idle time (load58A: ``httpx.ReadError`` at load 35-45), as dlq_lane's client's POST did (load57).
    A client that keeps them longer must resend such a request (RFC 9112 §9.3.1), as ``gamead submit`` does."""
    return httpx.Limits(max_connections=connections, keepalive_expiry=2.0)


async def _resent(http: httpx.AsyncClient, url: str, body: Any, key: str) -> httpx.Response:
    """``POST`` of ``body`` to ``url`` with ``Idempotency-Key: key``, sent again with it when the request got no
    answer (its connection dropped, ``RESENDS`` times at most), as ``gamead submit`` resends a keyed request.

    Why a loaded client meets the API's keep-alive close however short its own expiry (load58A-load60A:
    ``httpx.ReadError`` at load 35-86): uvicorn starts the connection's idle timer (``api.keep_alive_timeout``,
    5 s) when it has written the answer; httpcore starts the client's expiry (2 s, :func:`_limits`) when the client
    has read it (``http11.py``: ``_expire_at`` set in ``_response_closed``) and checks it, and whether the server's
    close already came (``is_readable``), only as it picks the connection for the next request. A client that reads
    the answer ``d`` s late and writes its next request ``w`` s after picking the connection sends into the
    server's close once ``d + w`` ≥ 3 s: seconds a process starved of CPU at load 35+ spends, not one at load 5
    (the API's own stalls are read first: :mod:`gamead_core.api.read_first`). HTTP leaves the race to the client
    (RFC 9112 §9.3.1); the key makes the resend safe (a resend is never a second ad, so wrong counts still show)."""
    for sent in range(RESENDS + 1):
        try:
            return await http.post(url, json=body, headers={"Idempotency-Key": key})
        except (httpx.ReadError, httpx.RemoteProtocolError):
            if sent == RESENDS:
                raise
    raise AssertionError("unreachable")


async def _keyed_post(http: httpx.AsyncClient, url: str, key: str) -> httpx.Response:
    """``POST /ads`` of one ad with ``key`` to the node at ``url`` (:func:`_resent`)."""
    return await _resent(http, f"{url}/ads", ad("Same key"), key)


async def _round(http: httpx.AsyncClient, urls: list[str], key: str) -> list[tuple[int, Any, str | None]]:
    """``AT_ONCE`` concurrent ``POST /ads`` of one ad with ``key``, alternating over ``urls``: (status, body,
    Retry-After) each."""

    async def one(url: str) -> tuple[int, Any, str | None]:
        reply = await _keyed_post(http, url, key)
        return reply.status_code, reply.json(), reply.headers.get("retry-after")

    return list(await asyncio.gather(*(one(urls[i % len(urls)]) for i in range(AT_ONCE))))


@pytest.fixture(scope="module")
def two_nodes(nats_cluster: NatsCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    """Two API nodes on the session's cluster, every stream R3 (no worker: the ads wait); their URLs."""
    cluster, logs = fresh_cluster(nats_cluster), tmp_path_factory.mktemp("key-in-process")
    apis = [start_api(cluster.url, logs, **R3) for _ in range(2)]
    yield [url for _, url in apis]
    for proc, _ in apis:
        proc.stop(timeout=10)


def test_concurrent_repeats_of_one_key_get_the_ad_or_409_in_process_never_503(two_nodes: list[str]) -> None:
    """Figures: before, 6 and 8 answers 503 ``queue_unavailable`` of 300 (two runs); after, e.g. 7 answers 409
    ``idempotency_key_in_process`` with ``Retry-After: 1``, the rest 202, one ad a round."""
    urls = two_nodes

    async def play() -> tuple[Counter[str], list[Any], list[Any]]:
        seen: Counter[str] = Counter()
        in_process: list[Any] = []
        wrong: list[Any] = []
        async with httpx.AsyncClient(timeout=30, limits=_limits(4 * AT_ONCE)) as http:
            for _ in range(ROUNDS):
                key = f"same-{uuid.uuid4().hex}"
                answers = await _round(http, urls, key)
                ids = {body["id"] for status, body, _ in answers if status == 202}
                new = sum(1 for status, body, _ in answers if status == 202 and body["duplicate"] is False)
                for status, body, wait in answers:
                    seen[f"{status} {body.get('error', {}).get('code', '') if status != 202 else ''}".strip()] += 1
                    if status == 409 and body["error"]["code"] == "idempotency_key_in_process":
                        in_process.append((body, wait))
                if len(ids) != 1 or new != 1 or any(s not in (202, 409) for s, _, _ in answers):
                    wrong.append(answers)
                if any(s == 409 for s, _, _ in answers):  # sent again after Retry-After: the first request's ad

                    async def resent(key: str = key) -> httpx.Response | None:
                        """Sent again after Retry-After (1 s), as a client does; None while still in process
                        (a loaded machine may store the first request's publish later than 1 s)."""
                        await asyncio.sleep(1.0)
                        got = await _keyed_post(http, urls[0], key)
                        busy = got.status_code == 409 and got.json()["error"]["code"] == "idempotency_key_in_process"
                        return None if busy else got

                    again = await until(resent, timeout=60, interval=0, what="an answer other than in process")
                    if again.status_code != 202 or again.json()["id"] not in ids:
                        wrong.append(("again", again.status_code, again.text))
        return seen, in_process, wrong

    seen, in_process, wrong = asyncio.run(play())
    assert wrong == [], (dict(seen), wrong[:3])
    assert set(seen) <= {"202", "409 idempotency_key_in_process"}, dict(seen)
    for body, wait in in_process:
        assert wait == "1" and body["error"]["details"]["retryAfter"] == 1, (body, wait)


def test_concurrent_keyed_batches_answer_each_ad_never_queue_unavailable(two_nodes: list[str]) -> None:
    """The same ``POST /ads/batch`` (one ``Idempotency-Key`` header: keys ``K-0`` … ``K-4``) sent 6 times at once,
    alternating over the nodes, 15 rounds: each answer is a 200 whose ads are the same 5 ads (new or duplicates) or
    409 ``idempotency_key_in_process`` errors with ``details.retryAfter`` — never a whole 503 or an ad's
    ``queue_unavailable``. Figures: before, 6 whole batches 503 ``queue_unavailable`` and 5 ads' own
    ``queue_unavailable`` (the same 10158 answer as the single route's); after, e.g. 13 ads'
    ``idempotency_key_in_process``, 437 ads answered, one ad per key."""
    body = {"ads": [ad(f"Batch ad {i}") for i in range(5)]}

    async def play() -> tuple[Counter[str], list[Any]]:
        seen: Counter[str] = Counter()
        wrong: list[Any] = []
        async with httpx.AsyncClient(timeout=30, limits=_limits(24)) as http:
            for _ in range(15):
                key = f"batch-{uuid.uuid4().hex}"
                replies = await asyncio.gather(*(_resent(http, f"{two_nodes[i % 2]}/ads/batch", body, key)
                                                 for i in range(6)))
                ids: list[set[str]] = [set() for _ in range(5)]
                for reply in replies:
                    if reply.status_code != 200:
                        seen[f"{reply.status_code} {reply.json()['error']['code']}"] += 1
                        wrong.append(reply.text[:300])
                        continue
                    for i, result in enumerate(reply.json()["results"]):
                        code = result.get("error", {}).get("code")
                        seen[code or "ad"] += 1
                        if code is None:
                            ids[i].add(result["id"])
                        elif code != "idempotency_key_in_process" or result["error"]["details"]["retryAfter"] != 1:
                            wrong.append(result)
                if any(len(one) > 1 for one in ids):  # one ad per key, whoever answered
                    wrong.append(ids)
        return seen, wrong

    seen, wrong = asyncio.run(play())
    assert wrong == [], (dict(seen), wrong[:3])
