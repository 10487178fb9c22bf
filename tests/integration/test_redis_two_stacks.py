"""Two deployments, each on its own NATS, one Redis (two ``gamead up`` on one machine given the same ``redis.url``):
neither answers for the other's ads.

Figure, before (attack59): the cache of terminal records was keyed ``gamead:ad:{id}`` in Redis alone, so once stack A
had answered ``GET /ads/{id}`` for its completed ad, stack B answered the same ``GET`` 200 with A's ad (``X-Cache:
hit``) while B's own ``GET /ads`` listed none: output that lies, one stack's state in the other's answers. Now the
key carries the deployment's record bucket (its creation time): B answers 404, A still from the cache.

Rate limits alike (leftout60): a bucket was ``gamead:rl:{bucket}:{key}``, so a client address (or a token name) that
spent its burst on stack A was refused 429 by stack B, which it had never asked. Now ``gamead:rl:{scope}:…``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx

from gamead_core.embedded import EmbeddedNats
from tests.redis_fixtures import ValkeyProc
from tests.support import Proc, ad, start_api, start_worker, wait_for


def test_a_stack_never_answers_another_stacks_ad_from_a_shared_redis(
        fresh_nats: Callable[[], EmbeddedNats], valkey_server: ValkeyProc, procs: list[Proc], tmp_path: Path) -> None:
    (a, url_a), (b, url_b) = (start_api(fresh_nats().url, tmp_path / name, GAMEAD_REDIS__URL=valkey_server.url)
                              for name in ("a", "b"))
    procs.extend([a, b])
    procs.append(start_worker(a.env["GAMEAD_NATS__URL"], tmp_path / "a"))
    ad_id = httpx.post(f"{url_a}/ads", json=ad("Only On A"), timeout=30).json()["id"]
    wait_for(lambda: httpx.get(f"{url_a}/ads/{ad_id}", timeout=30).json().get("status") == "completed", timeout=60,
             what="stack A's ad to complete")
    assert httpx.get(f"{url_a}/ads/{ad_id}", timeout=30).headers["x-cache"] == "hit"  # A reads it from Redis
    assert httpx.get(f"{url_b}/ads", timeout=30).json()["count"] == 0
    other = httpx.get(f"{url_b}/ads/{ad_id}", timeout=30)
    assert other.status_code == 404 and other.json()["error"]["code"] == "not_found", other.text


def test_a_stack_never_counts_requests_to_another_stack(
        fresh_nats: Callable[[], EmbeddedNats], valkey_server: ValkeyProc, procs: list[Proc], tmp_path: Path) -> None:
    burst = 5
    env = {"GAMEAD_REDIS__URL": valkey_server.url, "GAMEAD_RATELIMIT__ENABLED": "true",
           "GAMEAD_RATELIMIT__RATE": "0.01", "GAMEAD_RATELIMIT__BURST": str(burst), "GAMEAD_REDIS__SOCKET_TIMEOUT": "2"}
    (a, url_a), (b, url_b) = (start_api(fresh_nats().url, tmp_path / name, **env) for name in ("a", "b"))
    procs.extend([a, b])

    def shared(url: str) -> httpx.Response:  # counted on the bucket in Redis (not a node's own: ci53's fallback)
        return wait_for(lambda: (r := httpx.get(f"{url}/ads/no-such-ad", timeout=30)).headers.get(
            "x-ratelimit-scope") == "shared" and r, timeout=30, what=f"{url} to count in Redis")

    answers = [shared(url_a) for _ in range(burst + 1)]
    assert answers[-1].status_code == 429, [r.status_code for r in answers]  # A's address spent its burst on A
    first = shared(url_b)
    assert first.status_code == 404, first.text  # before: 429, A's spent bucket
    assert int(first.headers["x-ratelimit-remaining"]) == burst - 1, first.headers

