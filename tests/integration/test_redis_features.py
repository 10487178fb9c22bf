"""Redis-backed features on real processes: a real Valkey, a real NATS, real ``gamead serve`` nodes.

Shared rate limits across API nodes, the cache of terminal ads, the auth matrix, body limits, a Redis
outage under load (degrade, never 5xx, recover), and the serve-safety rule.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import redis
from typer.testing import CliRunner

from gamead_cli.main import app as cli
from gamead_core.api.ratelimit import RateLimiter
from gamead_core.config import RedisSettings
from gamead_core.embedded import EmbeddedNats
from gamead_core.redis_link import RedisLink
from tests.ports import ReservedPort
from tests.redis_fixtures import ValkeyProc
from tests.support import Proc, ad, clean_env, drop_gamead_env, run_gamead, start_api, start_worker, wait_for

SUBMIT, SUBMIT2, RATE, OPS, OPS2 = "s3cret-ci", "s3cret-ci2", "s3cret-rl", "s3cret-ops", "s3cret-ops2"
VIEW = "s3cret-view"
#: tokens of the auth matrix only (their own rate-limit buckets)
MX = {"submitter": "s3cret-mx-sub", "viewer": "s3cret-mx-view", "operator": "s3cret-mx-ops"}
TOKENS = [
    {"name": "ci", "token": SUBMIT, "role": "submitter"},
    {"name": "ci2", "token": SUBMIT2, "role": "submitter"},
    {"name": "rl", "token": RATE, "role": "submitter"},
    {"name": "dash", "token": VIEW, "role": "viewer"},
    {"name": "ops", "token": OPS, "role": "operator"},
    {"name": "ops2", "token": OPS2, "role": "operator"},
    *({"name": f"mx-{role}", "token": token, "role": role} for role, token in MX.items()),
]
SUBMITTER_BURST, SUBMITTER_RATE = 10, 1.0
ADMIN_BURST, ADMIN_RATE = 5, 0.5


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def nats(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNats]:
    """A NATS of this module's own: no worker runs on it unless a test starts one."""
    server = EmbeddedNats(tmp_path_factory.mktemp("nats-redis")).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def node_procs(
    nats: EmbeddedNats, valkey_server: ValkeyProc, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[tuple[Proc, str]]]:
    """Two API nodes on 127.0.0.1 sharing one Valkey, with small submitter/admin limits. Tokens are
    configured and ``auth.enabled`` is left unset: configured tokens alone must be enforced on loopback."""
    logs = tmp_path_factory.mktemp("redis-api-logs")
    env = {
        "GAMEAD_REDIS__URL": valkey_server.url,
        "GAMEAD_AUTH__TOKENS": json.dumps(TOKENS),
        "GAMEAD_RATELIMIT__ENABLED": "true",  # on loopback limits are off unless asked for
        "GAMEAD_RATELIMIT__ROLES": json.dumps({"submitter": {"rate": SUBMITTER_RATE, "burst": SUBMITTER_BURST}}),
        "GAMEAD_RATELIMIT__ADMIN__RATE": str(ADMIN_RATE),
        "GAMEAD_RATELIMIT__ADMIN__BURST": str(ADMIN_BURST),
        # ci53: the default 0.25 s per Valkey command is missed now and then on a loaded test machine, and that
        # request is then counted on the node's own bucket (the fallback): these nodes test sharing, not timeouts
        "GAMEAD_REDIS__SOCKET_TIMEOUT": "2",
    }
    started = [start_api(nats.url, logs, ready=False, **env) for _ in range(2)]
    urls: list[str] = []
    for proc, url in started:
        def ready(proc: Proc = proc, url: str = url) -> bool:
            if not proc.alive():
                raise AssertionError(f"API exited during start-up:\n{proc.output()[-3000:]}")
            try:
                answer = httpx.get(f"{url}/readyz", timeout=1)
            except httpx.HTTPError:
                return False
            # ci53: and its Redis link up: a start-up check that missed its timeout on a loaded machine leaves the
            # node degraded (its own buckets) for up to redis.breaker_reset, and these nodes test the shared ones
            return answer.status_code == 200 and answer.json()["checks"]["redis"] == "ok"

        wait_for(ready, timeout=30, what=f"API {url} ready, its Redis link up")
        urls.append(url)
    yield started
    for proc, _ in started:
        proc.stop()


@pytest.fixture(scope="module")
def nodes(node_procs: list[tuple[Proc, str]]) -> list[str]:
    return [url for _, url in node_procs]


@pytest.fixture
def valkey(valkey_server: ValkeyProc) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(valkey_server.url)
    yield client
    client.close()


# --- rate limits -------------------------------------------------------------------------------------------


def _bucket_keys(valkey: redis.Redis, bucket: str) -> list[bytes]:
    """The keys of ``bucket``'s (``route class:principal``) in Redis: ``gamead:rl:{scope}:{bucket}``, the scope the
    deployment's records bucket (gamead_core.api.ratelimit.bucket_key)."""
    return list(valkey.scan_iter(f"gamead:rl:*:{bucket}"))


def test_two_api_nodes_share_one_bucket(nodes: list[str], valkey: redis.Redis) -> None:
    a, b = (httpx.Client(base_url=u, headers=bearer(RATE), timeout=5) for u in nodes)
    answers: list[tuple[int, httpx.Response, float]] = []  # (node, answer, seconds since the first request)
    with a, b:
        start = time.monotonic()
        for node in [0, 1] * 20:
            answers.append((node, (a, b)[node].get("/ads/no-such-ad"), time.monotonic() - start))
    elapsed = answers[-1][2]
    # ci53: a node whose Valkey call did not answer in time (redis.socket_timeout 0.25 s; a loaded machine) counts
    # that request on its own bucket and says so (X-RateLimit-Scope: node); that is the fallback, not the shared
    # bucket failing, so only the shared answers are counted down below (before: the fallback read as a failure,
    # remaining 9 on the second request)
    shared = [r.headers["x-ratelimit-scope"] == "shared" for _, r, _ in answers]
    assert all(r.headers["x-ratelimit-scope"] in ("shared", "node") for _, r, _ in answers)
    assert all(sum(s for (n, _, _), s in zip(answers, shared) if n == node) >= 5 for node in (0, 1)), shared
    passed = [r for _, r, _ in answers if r.status_code != 429]
    assert all(r.status_code == 404 for r in passed)  # past the limiter, the handler answered
    # the sum of both nodes stays within one bucket (two separate buckets would let 2 x burst through);
    # the bucket refills SUBMITTER_RATE tokens a second meanwhile, however slow the machine is
    passed_shared = [r for (_, r, _), s in zip(answers, shared) if s and r.status_code != 429]
    assert SUBMITTER_BURST <= len(passed) and len(passed_shared) <= SUBMITTER_BURST + SUBMITTER_RATE * elapsed + 1
    # the nodes count down the same bucket: remaining goes 9, 8, 7 … alternating between them (plus what
    # refilled by the time of each answer; two buckets would answer 9, 9, 8, 8). A fallen-back call may still
    # have taken its token in Valkey (it timed out after sending): the floor counts every answer before
    for i, ((_, r, at), s) in enumerate(zip(answers[:4], shared)):
        left, k = int(r.headers["x-ratelimit-remaining"]), sum(shared[:i])
        if s:
            assert SUBMITTER_BURST - 1 - i <= left <= SUBMITTER_BURST - 1 - k + int(SUBMITTER_RATE * at), (i, left, at)
    assert {node for node, r, _ in answers if r.status_code == 429} == {0, 1}
    refused = next(r for _, r, _ in answers if r.status_code == 429)
    assert refused.json()["error"]["code"] == "rate_limited"
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.headers["x-ratelimit-limit"] == str(SUBMITTER_BURST)
    assert refused.headers["x-ratelimit-remaining"] == "0"
    assert int(refused.headers["x-ratelimit-reset"]) >= 1
    assert len(_bucket_keys(valkey, "api:tok:rl")) == 1  # one deployment: one scope


def test_a_request_counted_on_the_nodes_own_bucket_says_so(
    nats: EmbeddedNats, fresh_valkey: Callable[[], ValkeyProc], procs: list[Proc], tmp_path: Path
) -> None:
    """ci53: a Valkey call that does not answer within ``redis.socket_timeout`` (a stalled Valkey, a loaded machine)
    is counted on the node's own bucket, and the answer says so: ``X-RateLimit-Scope: node`` (``shared`` when the
    bucket every node shares decided). Before, nothing told it apart: a second node answered ``remaining`` 9 after
    the first node's 9, which read as two buckets (test_two_api_nodes_share_one_bucket failed so in a full run)."""
    server = fresh_valkey()
    api, url = start_api(nats.url, tmp_path, GAMEAD_REDIS__URL=server.url, GAMEAD_AUTH__TOKENS=json.dumps(TOKENS),
                         GAMEAD_RATELIMIT__ENABLED="true")
    procs.append(api)
    assert server.proc is not None
    with httpx.Client(base_url=url, headers=bearer(SUBMIT), timeout=10) as client:
        assert client.get("/ads/no-such-ad").headers["x-ratelimit-scope"] == "shared"
        os.kill(server.proc.pid, signal.SIGSTOP)  # ours: Valkey holds every call past the 0.25 s timeout
        try:
            stalled = client.get("/ads/no-such-ad")
        finally:
            os.kill(server.proc.pid, signal.SIGCONT)
        assert stalled.status_code == 404 and stalled.headers["x-ratelimit-scope"] == "node", stalled.headers
        wait_for(lambda: client.get("/ads/no-such-ad").headers["x-ratelimit-scope"] == "shared", timeout=30,
                 what="the shared bucket deciding again once Valkey answers")


def test_admin_routes_have_their_own_smaller_bucket(nodes: list[str]) -> None:
    with httpx.Client(base_url=nodes[0], headers=bearer(OPS2), timeout=5) as c:
        start = time.monotonic()
        answers = []
        while len(answers) < 50 and (not answers or answers[-1].status_code != 429):
            answers.append(c.get("/v1/stats"))
        elapsed = time.monotonic() - start
        codes = [r.status_code for r in answers]
        # the first ADMIN_BURST pass, then the small admin bucket refuses (give or take what refilled)
        assert 429 not in codes[:ADMIN_BURST] and codes[-1] == 429, codes
        assert len(codes) - 1 <= ADMIN_BURST + ADMIN_RATE * elapsed + 1, (codes, elapsed)
        limited = answers[-1]
        assert limited.headers["x-ratelimit-limit"] == str(ADMIN_BURST)
        # the same operator's /ads bucket is untouched: the default limit, nearly full
        ads = c.get("/ads", params={"limit": 1})
        assert ads.status_code == 200
        assert ads.headers["x-ratelimit-limit"] == "400"
        assert int(ads.headers["x-ratelimit-remaining"]) >= 398


def test_the_redis_bucket_script_counts_down_and_refuses_past_the_burst(valkey_server: ValkeyProc) -> None:
    async def scenario() -> tuple[list[tuple[bool, int, float]], float]:
        link = RedisLink(RedisSettings(url=valkey_server.url))
        try:
            limiter = RateLimiter(link)
            key = f"script-{time.monotonic_ns()}"
            out = []
            start = time.monotonic()
            for _ in range(7):
                d = await limiter.hit("test", key, rate=0.001, burst=5)
                out.append((d.allowed, d.remaining, d.retry_after))
            assert limiter.redis_decisions == 7 and limiter.local_decisions == 0
            return out, time.monotonic() - start
        finally:
            await link.close()

    # one token per 1000 s: nothing refills during the test, so the counts are exact on any machine
    got, elapsed = asyncio.run(scenario())
    assert [(a, r) for a, r, _ in got] == [(True, 4), (True, 3), (True, 2), (True, 1), (True, 0), (False, 0), (False, 0)]
    assert 1000 - elapsed - 1 <= got[-1][2] <= 1000  # one whole token at 0.001/s, less what refilled


# --- auth ------------------------------------------------------------------------------------------------


#: one request per (route class, read/write): what an authorised caller gets past the gate
CLASS_REQUESTS: dict[tuple[str, str], tuple[str, str, object]] = {
    ("open", "read"): ("GET", "/healthz", None),
    ("open", "write"): ("POST", "/healthz", None),
    ("ads", "read"): ("GET", "/ads?limit=1", None),
    ("ads", "write"): ("POST", "/ads", {}),  # an empty ad: 422 once past the gate, nothing is queued
    ("ad", "read"): ("GET", "/ads/no-such-ad", None),
    ("ad", "write"): ("DELETE", "/ads/no-such-ad", None),
    ("v1", "read"): ("GET", "/v1/workers", None),
    ("v1", "write"): ("POST", "/v1/dlq/purge", {"ids": ["01aaaaaaaaaaaaaaaaaaaaaaaa"]}),  # 400 confirmation_required
    ("other", "read"): ("GET", "/nowhere", None),
    ("other", "write"): ("POST", "/nowhere", {}),
}
#: what the handler answers once the gate lets the request through
PAST_GATE = {
    ("open", "read"): 200, ("open", "write"): 405, ("ads", "read"): 200, ("ads", "write"): 422,
    ("ad", "read"): 404, ("ad", "write"): 405, ("v1", "read"): 200, ("v1", "write"): 400,
    ("other", "read"): 404, ("other", "write"): 404,
}
#: the grant table as a user sees it: who gets past the gate
ALLOWED = {
    ("ads", "read"): {"submitter", "viewer", "operator"},
    ("ads", "write"): {"submitter", "operator"},
    ("ad", "read"): {"submitter", "viewer", "operator"},
    ("ad", "write"): {"submitter", "viewer", "operator"},  # DELETE /ads/{id} has no route: 405 for all who may read
    ("v1", "read"): {"viewer", "operator"},
    ("v1", "write"): {"operator"},
    ("other", "read"): {"submitter", "viewer", "operator"},
    ("other", "write"): {"operator"},
}
CALLERS = ["none", "wrong", "submitter", "viewer", "operator"]


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("case", list(CLASS_REQUESTS), ids="-".join)
def test_auth_matrix(nodes: list[str], caller: str, case: tuple[str, str]) -> None:
    method, path, body = CLASS_REQUESTS[case]
    token = {"none": None, "wrong": "wrong-token"}.get(caller, MX.get(caller))
    headers = bearer(token) if token else {}
    resp = httpx.request(method, nodes[1] + path, headers=headers, json=body, timeout=5)
    if case[0] == "open":
        expected = PAST_GATE[case]
    elif caller in ("none", "wrong"):
        expected = 401
    else:
        expected = PAST_GATE[case] if caller in ALLOWED[case] else 403
    assert resp.status_code == expected, resp.text
    error = resp.json().get("error") if resp.status_code >= 400 else None
    if expected == 401:
        assert error["code"] == "unauthenticated"
        assert resp.headers["www-authenticate"].startswith("Bearer")
        assert ("invalid" if token else "required") in error["message"]
    if expected == 403:
        assert error["code"] == "forbidden"
        assert f"role {caller!r}" in error["message"]
        needed = sorted(ALLOWED[case])
        assert sorted(error["details"]["needs"]) == needed
        assert all(repr(role) in error["message"] for role in needed)  # names the role it needs


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/v1/dlq/purge", {"all": True, "confirm": True}),
        ("POST", "/v1/scale/override", {"replicas": 7, "forSeconds": 60}),
    ],
)
def test_configured_tokens_are_enforced_on_loopback(
    nodes: list[str], method: str, path: str, body: dict[str, object]
) -> None:
    """Issue 11.1: tokens configured, ``auth.enabled`` unset, API on 127.0.0.1: no token, a wrong one, a
    submitter's or a viewer's cannot purge the DLQ or override the autoscaler."""
    for token, status, code in [(None, 401, "unauthenticated"), ("wrong-token", 401, "unauthenticated"),
                                (SUBMIT, 403, "forbidden"), (VIEW, 403, "forbidden")]:
        resp = httpx.request(method, nodes[0] + path, json=body, headers=bearer(token) if token else {}, timeout=5)
        assert (resp.status_code, resp.json()["error"]["code"]) == (status, code), (token, resp.text)
    scale = httpx.get(f"{nodes[0]}/v1/scale", headers=bearer(VIEW), timeout=5)
    assert scale.status_code == 200 and scale.json().get("override") is None  # nothing was overridden


def test_refusals_are_logged_with_who_and_what(node_procs: list[tuple[Proc, str]]) -> None:
    proc, url = node_procs[0]
    address = "127.0.0.7"  # its own client address: refusal lines are throttled per address (attack28a F6)
    with httpx.Client(transport=httpx.HTTPTransport(local_address=address), timeout=5) as c:
        c.post(f"{url}/v1/dlq/purge", json={"all": True, "confirm": True}, headers=bearer(VIEW))
        c.post(f"{url}/v1/dlq/purge", json={"all": True, "confirm": True})

    def logged() -> list[dict[str, object]]:
        lines = [json.loads(line) for line in proc.output().splitlines() if line.startswith("{")]
        return [line for line in lines if str(line.get("message", "")).startswith("refused: 40")
                and line.get("client") == address]

    lines = wait_for(lambda: len(logged()) >= 2 and logged(), what="the refusals in the log")
    forbidden = next(line for line in lines if line["status"] == 403 and line.get("principal") == "dash")
    assert (forbidden["actor_role"], forbidden["role"]) == ("viewer", "api")  # role: the process's (attack29a F8)
    assert "POST /v1/dlq/purge" in str(forbidden["message"])
    assert any(line["status"] == 401 and line["client"] == address for line in lines)
    assert VIEW not in proc.output()


def test_the_start_up_log_says_which_auth_mode_is_in_force(node_procs: list[tuple[Proc, str]]) -> None:
    proc, _ = node_procs[0]
    lines = [json.loads(line) for line in proc.output().splitlines() if line.startswith("{")]
    modes = [line for line in lines if "auth_mode" in line]
    assert len(modes) == 1, modes
    assert modes[0]["auth_mode"] == "required"
    assert modes[0]["auth_tokens"] == {"submitter": 4, "viewer": 2, "operator": 3}
    output = proc.output()
    assert not any(t["token"] in output for t in TOKENS)  # never a token


def test_a_submitter_can_submit_and_read(nodes: list[str]) -> None:
    with httpx.Client(base_url=nodes[0], headers=bearer(SUBMIT2), timeout=5) as c:
        accepted = c.post("/ads", json=ad("Token Tales"))
        assert accepted.status_code == 202
        assert c.get(f"/ads/{accepted.json()['id']}").json()["status"] == "queued"


def test_the_cli_sends_gamead_token(nodes: list[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    drop_gamead_env(monkeypatch, tmp_path)
    ad_id = httpx.post(f"{nodes[0]}/ads", json=ad("CLI Token"), headers=bearer(OPS), timeout=5).json()["id"]
    runner = CliRunner()
    denied = runner.invoke(cli, ["ads", "get", ad_id, "--api", nodes[0], "-o", "json"])
    assert denied.exit_code != 0
    assert "GAMEAD_TOKEN" in denied.output and "unauthenticated" in denied.output
    ok = runner.invoke(cli, ["ads", "get", ad_id, "--api", nodes[0], "-o", "json"], env={"GAMEAD_TOKEN": OPS})
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["id"] == ad_id


# --- body limits -------------------------------------------------------------------------------------------


def test_a_100_kib_body_is_refused_on_every_route(nodes: list[str]) -> None:
    from gamead_core.api.body_caps import ID_LIST_BODY

    big = b'{"title": "' + b"x" * (100 * 1024) + b'"}'

    def chunks() -> Iterator[bytes]:  # no Content-Length: sent chunked, capped while it streams
        for i in range(0, len(big), 8192):
            yield big[i : i + 8192]

    cases = [
        ("POST", "/ads", big, bearer(SUBMIT2)),
        ("POST", "/ads", chunks(), bearer(SUBMIT2)),
        ("POST", "/ads", big, {}),  # the size is checked first, before auth
        # a replay's cap is room for its 10,000 ids (body_caps.ID_LIST_BODY, attack44 F2): a body over that
        ("POST", "/v1/dlq/replay", b'{"title": "' + b"x" * ID_LIST_BODY + b'"}', bearer(OPS)),
        ("PUT", "/healthz", big, {}),
    ]
    for method, path, body, headers in cases:
        resp = httpx.request(method, nodes[0] + path, content=body, headers=headers, timeout=10)
        assert resp.status_code == 413, (method, path, resp.status_code, resp.text[:200])
        error = resp.json()["error"]
        assert error["code"] == "payload_too_large" and "limit" in error["message"]
    # just under the limit is not refused for its size
    near = json.dumps({**ad("Near"), "description": "y" * 60_000}).encode()
    resp = httpx.post(f"{nodes[0]}/ads", content=near, headers=bearer(SUBMIT2), timeout=10)
    assert resp.status_code == 422 and resp.json()["error"]["code"] == "validation_failed"


# --- cache -------------------------------------------------------------------------------------------------


def _cache_keys(valkey: redis.Redis, ad_id: str) -> list[bytes]:
    """The keys of ``ad_id``'s cache entries (``gamead:ad:{scope}:{id}``: gamead_core.api.cache)."""
    return list(valkey.scan_iter(f"gamead:ad:*:{ad_id}"))


def test_cache_serves_terminal_records_and_never_a_stale_status(
    nodes: list[str], nats: EmbeddedNats, valkey: redis.Redis, procs: list[Proc], tmp_path: Path
) -> None:
    a, b = (httpx.Client(base_url=u, headers=bearer(OPS), timeout=5) for u in nodes)
    with a, b:
        ad_id = a.post("/ads", json=ad("Cache Quest")).json()["id"]
        for client in (a, b, a, b):  # no worker yet: queued, read from the store every time, never cached
            resp = client.get(f"/ads/{ad_id}")
            assert resp.json()["status"] == "queued" and resp.headers["x-cache"] == "miss"
        assert not _cache_keys(valkey, ad_id)

        # ads titled "Doomed…" fail permanently: dead, which a DLQ replay can turn back into queued
        procs.append(start_worker(nats.url, tmp_path, worker_id="cache-worker", concurrency=2,
                                  GAMEAD_WORKER__FAULTS__RATE="1", GAMEAD_WORKER__FAULTS__MATCH="^Doomed",
                                  GAMEAD_WORKER__FAULTS__MODE="permanent"))
        doomed = a.post("/ads", json=ad("Doomed Dungeon")).json()["id"]

        def completed() -> httpx.Response | None:
            resp = a.get(f"/ads/{ad_id}")
            return resp if resp.json()["status"] == "completed" else None

        first = wait_for(completed, timeout=20, what="the ad to complete")
        assert first.headers["x-cache"] == "miss"  # read from the store, then cached
        [key] = _cache_keys(valkey, ad_id)  # one deployment: one scope
        cached = json.loads(valkey.get(key))
        assert cached == first.json() and cached["status"] == "completed"
        assert 0 < valkey.ttl(key) <= 300
        for client in (b, a, b):  # every node now answers from the shared cache, with the final status
            hit = client.get(f"/ads/{ad_id}")
            assert hit.headers["x-cache"] == "hit"
            assert hit.json() == first.json()
        # a dead record is never cached: a replay may move it back to queued at any moment
        wait_for(lambda: a.get(f"/ads/{doomed}").json()["status"] == "dead", timeout=20, what="the ad to die")
        for client in (a, b):
            assert client.get(f"/ads/{doomed}").headers["x-cache"] == "miss"
        assert not _cache_keys(valkey, doomed)
        seen: dict[str, dict] = {}

        def counted() -> bool:  # each node counts its own; /v1/stats is sampled once a second (small bucket)
            for name, client in (("a", a), ("b", b)):
                resp = client.get("/v1/stats")
                if resp.status_code == 200 and resp.json().get("cache"):
                    seen[name] = resp.json()["cache"]
            hits = sum(c["hits"] for c in seen.values())
            misses = sum(c["misses"] for c in seen.values())
            return len(seen) == 2 and hits >= 3 and misses >= 4

        wait_for(counted, timeout=15, interval=1.0, what="/v1/stats to count the cache hits and misses")


# --- degrade, don't fail ----------------------------------------------------------------------------------


class Load(threading.Thread):
    """Submits and reads without pause until stopped; counts status codes, before/during/after an outage."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.stop = threading.Event()
        self.phase = "before"
        self.codes: Counter[tuple[str, int]] = Counter()
        self.errors: list[str] = []
        self.limit_headers_seen: set[str] = set()

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=5) as c:
            ad_id = c.post("/ads", json=ad("Load Runner")).json()["id"]
            while not self.stop.is_set():
                for method, path, body in (("POST", "/ads", ad("Load Runner")), ("GET", f"/ads/{ad_id}", None),
                                           ("GET", "/ads?limit=5", None)):
                    try:
                        resp = c.request(method, path, json=body)
                    except httpx.HTTPError as exc:
                        self.errors.append(f"{self.phase}: {exc!r}")
                        continue
                    self.codes[(self.phase, resp.status_code)] += 1
                    if "x-ratelimit-remaining" in resp.headers:
                        self.limit_headers_seen.add(self.phase)

    def ok(self, phase: str) -> int:
        return sum(n for (p, code), n in self.codes.items() if p == phase and code < 400)


def test_redis_outage_under_load_degrades_without_5xx_and_recovers(
    nats: EmbeddedNats, fresh_valkey: object, procs: list[Proc], tmp_path: Path
) -> None:
    server: ValkeyProc = fresh_valkey()  # type: ignore[operator]
    api, url = start_api(nats.url, tmp_path, GAMEAD_REDIS__URL=server.url, GAMEAD_REDIS__BREAKER_RESET="0.5",
                         GAMEAD_RATELIMIT__ENABLED="true",
                         GAMEAD_RATELIMIT__RATE="100000", GAMEAD_RATELIMIT__BURST="100000")
    procs.append(api)
    valkey = redis.Redis.from_url(server.url)

    def readyz() -> dict[str, object]:
        resp = httpx.get(f"{url}/readyz", timeout=5)
        assert resp.status_code == 200, resp.text  # degraded is still ready
        return resp.json()  # type: ignore[no-any-return]

    load = Load(url)
    load.start()
    try:
        assert readyz()["checks"]["redis"] == "ok"  # type: ignore[index]
        wait_for(lambda: _bucket_keys(valkey, "api:ip:127.0.0.1"), what="limits kept in Redis")

        server.kill()
        degraded = wait_for(lambda: (r := readyz())["status"] == "degraded" and r, timeout=10, what="degraded")
        assert str(degraded["checks"]["redis"]).startswith("degraded: ")  # type: ignore[index]
        assert degraded["checks"]["nats"] == "ok"  # type: ignore[index]
        load.phase = "during"
        wait_for(lambda: load.ok("during") >= 30, timeout=10, what="requests served while Redis is down")

        server.start()  # same port, empty data
        load.phase = "after"
        recovered = wait_for(lambda: (r := readyz())["status"] == "ready" and r, timeout=10, what="recovery")
        assert recovered["checks"]["redis"] == "ok"  # type: ignore[index]
        valkey = redis.Redis.from_url(server.url)
        wait_for(lambda: _bucket_keys(valkey, "api:ip:127.0.0.1"), what="limits back in Redis")
        wait_for(lambda: load.ok("after") >= 10, timeout=10, what="requests after recovery")
    finally:
        load.stop.set()
        load.join(10)
    server_errors = {k: n for k, n in load.codes.items() if k[1] >= 500}
    assert not server_errors, f"5xx while Redis was down: {server_errors}\n{api.output()[-3000:]}"
    assert not load.errors, load.errors[:5]
    assert {"before", "during", "after"} <= load.limit_headers_seen  # limits never switched off


# --- serve safety ------------------------------------------------------------------------------------------


def test_serve_on_0_0_0_0_without_tokens_refuses_to_start(nats: EmbeddedNats) -> None:
    with ReservedPort() as held:  # no other process can listen there: a connection is refused unless serve did
        port = held.port
        result = run_gamead("serve", "--host", "0.0.0.0", "--port", str(port),
                            env=clean_env(GAMEAD_NATS__URL=nats.url), timeout=30)
        assert result.returncode == 5  # the config error exit code
        assert "refusing to start" in result.stderr
        assert "auth.tokens" in result.stderr and "auth.enabled: false" in result.stderr
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
