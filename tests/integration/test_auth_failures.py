"""Failed authentication is rate-limited per client address and its log lines are bounded (attack28a F6).

The same rule without Redis (per node) is in ``tests/unit/test_auth_failures.py``.

Two real ``gamead serve`` nodes (auth on, rate limits on) sharing a real Valkey. Each test's caller comes from its
own loopback address (``127.0.0.N``: the API sees it as the client address), so their buckets are apart.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest

from gamead_core.api.auth_failures import LOG_EVERY
from gamead_core.embedded import EmbeddedNats
from tests.redis_fixtures import ValkeyProc
from tests.support import Proc, start_api, wait_for

OPS, SUB, VIEW = "s3cret-af-ops", "s3cret-af-sub", "s3cret-af-view"
TOKENS = [{"name": "ops", "token": OPS, "role": "operator"}, {"name": "ci", "token": SUB, "role": "submitter"},
          {"name": "dash", "token": VIEW, "role": "viewer"}]
RATE, BURST = 0.5, 5  #: the anonymous limit: what failed authentications are charged to


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory, valkey_server: ValkeyProc) -> Iterator[list[tuple[Proc, str]]]:
    server = EmbeddedNats(tmp_path_factory.mktemp("nats-authfail")).start()
    logs = tmp_path_factory.mktemp("authfail-logs")
    env = {"GAMEAD_AUTH__TOKENS": json.dumps(TOKENS), "GAMEAD_RATELIMIT__ENABLED": "true",
           "GAMEAD_RATELIMIT__RATE": str(RATE), "GAMEAD_RATELIMIT__BURST": str(BURST),
           "GAMEAD_REDIS__URL": valkey_server.url}
    started: list[tuple[Proc, str]] = []
    try:
        for _ in range(2):
            started.append(start_api(server.url, logs, **env))
        yield started
    finally:
        for proc, _ in started:
            proc.stop()
        server.stop()


def client(url: str, address: str, token: str | None = None) -> httpx.Client:
    """An HTTP client whose requests come from ``address`` (any 127.0.0.0/8 address is this machine's)."""
    return httpx.Client(base_url=url, transport=httpx.HTTPTransport(local_address=address), timeout=10,
                        headers={"Authorization": f"Bearer {token}"} if token else {})


def refusal_lines(proc: Proc, address: str) -> list[dict[str, object]]:
    lines = [json.loads(line) for line in proc.output().splitlines() if line.startswith("{")]
    return [line for line in lines if str(line.get("message", "")).startswith("refused: 4")
            and line.get("client") == address]


def test_wrong_tokens_past_the_limit_get_429_and_a_valid_token_still_works(nodes: list[tuple[Proc, str]]) -> None:
    (proc, url), (_, other_url) = nodes
    attacker = "127.0.0.2"
    answers: list[httpx.Response] = []
    start = time.monotonic()
    with client(url, attacker) as c:
        for i in range(60):  # a different guess each time, on several routes, and no token at all
            headers = {"Authorization": f"Bearer guess-{i}"} if i % 3 else {}
            answers.append(c.request(*(("GET", "/ads"), ("GET", "/v1/stats"), ("POST", "/ads"))[i % 3],
                                     headers=headers))
    elapsed = time.monotonic() - start
    statuses = Counter(r.status_code for r in answers)
    assert set(statuses) == {401, 429}, statuses
    # at most the bucket, plus what refilled meanwhile, were told 401: every other guess was never compared
    assert BURST <= statuses[401] <= BURST + RATE * elapsed + 1, (statuses, elapsed)
    assert all(r.status_code == 401 for r in answers[:BURST])
    refused = answers[-1]
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "rate_limited"
    assert "without a valid API token" in refused.json()["error"]["message"]
    assert int(refused.headers["retry-after"]) >= 1 and refused.headers["x-ratelimit-remaining"] == "0"
    assert answers[0].headers["x-ratelimit-remaining"] == str(BURST - 1)  # a 401 says what is left

    # the bucket is shared through Redis: the other node refuses this address's wrong tokens too
    with client(other_url, attacker) as c:
        assert c.get("/ads", headers={"Authorization": "Bearer guess-x"}).status_code == 429

    # an operator at another address is untouched by these failures
    with client(url, "127.0.0.1", OPS) as ops:
        assert ops.get("/v1/stats").status_code == 200
    # a valid token from the locked-out address is not even compared meanwhile (README: behind one NAT address)
    with client(url, attacker, SUB) as same_address:
        assert same_address.get("/ads").status_code == 429

    # the log: one line per address and status (401, 429) per LOG_EVERY s, not one per request
    elapsed = time.monotonic() - start
    assert len(refusal_lines(proc, attacker)) <= 2 * (1 + elapsed / LOG_EVERY), refusal_lines(proc, attacker)
    with client(url, attacker) as c:  # guessing on: the next line logged says how many were left out
        def summary() -> list[dict[str, object]]:
            c.get("/ads", headers={"Authorization": "Bearer guess-y"})
            return [line for line in refusal_lines(proc, attacker) if "more refused from 127.0.0.2" in
                    str(line["message"])]

        said = wait_for(summary, timeout=30, interval=0.5, what="a line saying how many refusals were not logged")
    assert int(said[0]["refusals_not_logged"]) >= 50  # type: ignore[call-overload]

    # once the guessing stops and the address's bucket has a token again, the valid token works from there too
    with client(url, attacker, SUB) as same_address:
        wait_for(lambda: same_address.get("/ads").status_code == 200, timeout=30, interval=0.5,
                 what="the valid token served again from the address once the guessing stopped")


def test_forbidden_log_lines_are_bounded_per_address(nodes: list[tuple[Proc, str]]) -> None:
    proc, url = nodes[0]
    start = time.monotonic()
    with client(url, "127.0.0.3", VIEW) as viewer:
        statuses = Counter(viewer.post("/v1/dlq/purge", json={"all": True, "confirm": True}).status_code
                           for _ in range(40))
    elapsed = time.monotonic() - start
    assert statuses == {403: 40}  # a valid token's refusals are not charged to the address's bucket
    wait_for(lambda: refusal_lines(proc, "127.0.0.3"), what="the first 403 line")
    lines = refusal_lines(proc, "127.0.0.3")
    assert lines[0]["status"] == 403 and lines[0]["principal"] == "dash"
    assert len(lines) <= 1 + elapsed / LOG_EVERY, lines
