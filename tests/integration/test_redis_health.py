"""attack28a F1 + F2: an API node's Redis health tells the truth, on a real ``gamead serve``, a real NATS and a
real Valkey.

F1: a full Valkey (``maxmemory`` with ``noeviction``) or a read-only replica answers ``PING``, so ``/readyz`` said
``redis: ok`` while every write was refused, the breaker flapped and the log said "redis is back"/"redis failing"
pairs every few seconds; ``gamead doctor`` never looked at Redis. Now the health check is a write: ``/readyz``
stays ``degraded: out of memory`` (``read-only (a replica)``) until writes are stored, the log says it once each
way, and the doctor reports ``redis_unwritable`` (a warning: the ads still flow, so exit 0).

F2: a node whose Redis is unreachable at start said ``redis: ok`` for its first ~2 s; now its first ``/readyz``
says ``degraded``, and a host that does not resolve reads ``cannot resolve …`` (not ``unknown error -2``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import redis

from gamead_core.embedded import EmbeddedNats
from tests.redis_fixtures import ValkeyProc
from tests.support import Proc, ad, clean_env, run_gamead, start_api, wait_for

FAILING, BACK = "redis failing (", "redis is back"


def _redis_check(url: str) -> str:
    return str(httpx.get(f"{url}/readyz", timeout=5).json()["checks"]["redis"])


def _checks_made(url: str) -> int:
    """Calls the node's breaker saw fail or succeed, from ``/v1/stats`` (a health check is one a second or
    one per ``redis.breaker_reset`` while open)."""
    breaker = httpx.get(f"{url}/v1/stats", timeout=10).json()["redis"]["breaker"]
    return int(breaker["failures"]) + int(breaker["successes"])


def _stays_degraded(url: str, said: str, checks: int = 6) -> None:
    """``/readyz`` says ``degraded: <said>`` over ``checks`` more health checks, never ``ok`` (the flapping of
    F1 said ``ok`` after every probe)."""
    seen: list[str] = []
    start = _checks_made(url)

    def enough() -> bool:
        seen.append(_redis_check(url))
        return _checks_made(url) >= start + checks

    wait_for(enough, timeout=30, what=f"{checks} health checks")
    assert seen and all(s.startswith(f"degraded: {said} (circuit ") for s in seen), seen


def _doctor(url: str, *args: str) -> tuple[int, str]:
    run = run_gamead("doctor", "--api", url, "--settle", "0.2", *args, env=clean_env(), timeout=120)
    return run.returncode, run.stdout + run.stderr


@pytest.mark.timeout(180)
def test_a_valkey_that_refuses_writes_keeps_the_node_degraded_and_the_doctor_says_so(
    fresh_nats: Callable[[], EmbeddedNats], fresh_valkey: Callable[[], ValkeyProc], procs: list[Proc], tmp_path: Path,
    closed_port: Callable[[], int],
) -> None:
    nats = fresh_nats()
    server = fresh_valkey()
    api, url = start_api(nats.url, tmp_path, GAMEAD_REDIS__URL=server.url, GAMEAD_REDIS__BREAKER_RESET="0.5",
                         GAMEAD_RATELIMIT__ENABLED="true", GAMEAD_RATELIMIT__RATE="100000",
                         GAMEAD_RATELIMIT__BURST="100000")
    procs.append(api)
    valkey = redis.Redis.from_url(server.url)
    assert _redis_check(url) == "ok"
    code, out = _doctor(url)
    assert code == 0 and "redis_unwritable" not in out, out

    # full: every write refused (OOM), PING and GET still answered
    valkey.config_set("maxmemory-policy", "noeviction")
    valkey.config_set("maxmemory", 1)
    assert valkey.ping() and valkey.get("gamead:none") is None
    wait_for(lambda: _redis_check(url).startswith("degraded: out of memory"), timeout=15, what="degraded: OOM")
    submitted = httpx.post(f"{url}/ads", json=ad("full valkey"), timeout=10)  # the ads still flow
    assert submitted.status_code == 202, submitted.text
    ad_id = submitted.json()["id"]
    for _ in range(3):  # reads that Redis would answer, if the node asked it
        assert httpx.get(f"{url}/ads/{ad_id}", timeout=10).status_code == 200
    _stays_degraded(url, "out of memory")

    code, out = _doctor(url)
    assert code == 0, out  # review28 R3: a warning (the ads still flow) is printed, not exit 1
    assert "redis_unwritable" in out and "out of memory" in out and "rate limits" in out, out
    assert "the ads still flow" in out and "every invariant holds" not in out, out
    code, out = _doctor(url, "-o", "json")
    (finding,) = [f for f in json.loads(out[out.index("{"):])["findings"] if f["kind"] == "redis_unwritable"]
    assert finding["severity"] == "warning" and finding["sample"] == ["redis"], finding

    valkey.config_set("maxmemory", 0)
    wait_for(lambda: _redis_check(url) == "ok", timeout=15, what="ok once writes are stored")
    log = api.output()
    assert log.count(FAILING) == 1 and log.count(BACK) == 1, [ln for ln in log.splitlines() if "redis" in ln]

    # a read-only replica (a fail-over that left the node on the old primary): the same, said as such
    valkey.execute_command("REPLICAOF", "127.0.0.1", str(closed_port()))
    wait_for(lambda: _redis_check(url).startswith("degraded: read-only (a replica)"), timeout=15,
             what="degraded: READONLY")
    _stays_degraded(url, r"read-only (a replica)")
    valkey.execute_command("REPLICAOF", "NO", "ONE")
    wait_for(lambda: _redis_check(url) == "ok", timeout=15, what="ok once the replica is a primary again")
    code, out = _doctor(url)
    assert code == 0 and "redis_unwritable" not in out, out
    log = api.output()
    assert log.count(FAILING) == 2 and log.count(BACK) == 2, [ln for ln in log.splitlines() if "redis" in ln]


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("where", "said", "logged"), [
    ("127.0.0.1:{port}", "cannot connect: connection refused", "cannot connect: connection refused"),
    ("no-such-host.invalid:6379", "cannot resolve the host: ", "cannot resolve host no-such-host.invalid: "),
])
def test_a_node_whose_redis_is_away_at_start_is_degraded_from_its_first_readyz(
    fresh_nats: Callable[[], EmbeddedNats], fresh_valkey: Callable[[], ValkeyProc], procs: list[Proc],
    tmp_path: Path, where: str, said: str, logged: str, closed_port: Callable[[], int],
) -> None:
    nats = fresh_nats()
    redis_url = f"redis://{where.format(port=closed_port())}/0"
    api, url = start_api(nats.url, tmp_path, ready=False, GAMEAD_REDIS__URL=redis_url)
    procs.append(api)

    def first_readyz() -> httpx.Response | None:
        assert api.alive(), api.output()[-3000:]
        try:
            return httpx.get(f"{url}/readyz", timeout=2)
        except httpx.HTTPError:
            return None

    first = wait_for(first_readyz, timeout=60, what="the first /readyz")
    assert first.json()["checks"]["redis"].startswith(f"degraded: {said}"), first.json()
    assert "unknown error" not in first.text and "no-such-host" not in first.text, first.text
    wait_for(lambda: logged in api.output(), timeout=10, what="the start-up line saying why")
    assert "unknown error" not in api.output()
