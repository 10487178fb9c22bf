"""Issue 11.4 on real processes: with passwords in ``nats.url`` and ``redis.url``, no log line, API answer or
``/v1/stats`` section of a real ``gamead serve`` (nor a worker's log) shows them, connected or not."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import redis

from gamead_core.embedded import EmbeddedNats
from tests.redis_fixtures import ValkeyProc
from tests.support import Proc, ad, start_api, start_worker, wait_for

NATS_PW, REDIS_PW = "PW-nats-0xdeadbeef", "PW-redis-0xfeedface"


@pytest.fixture
def redis_user(valkey_server: ValkeyProc) -> Iterator[str]:
    """A Valkey ACL user with a password; yields its redis:// URL (with the password in it)."""
    client = redis.Redis.from_url(valkey_server.url)
    client.execute_command("ACL", "SETUSER", "gamead-e2e", "on", f">{REDIS_PW}", "~*", "&*", "+@all")
    yield f"redis://gamead-e2e:{REDIS_PW}@{valkey_server.host}:{valkey_server.port}/0"
    client.execute_command("ACL", "DELUSER", "gamead-e2e")
    client.close()


def _assert_no_password(*texts: str) -> None:
    for text in texts:
        assert NATS_PW not in text and REDIS_PW not in text, text[-2000:]


def test_passwords_in_urls_never_leave_a_connected_api_or_worker(
    nats_server: EmbeddedNats, redis_user: str, procs: list[Proc], tmp_path: Path
) -> None:
    nats_url = nats_server.url.replace("nats://", f"nats://gamead:{NATS_PW}@")
    api, url = start_api(nats_url, tmp_path, GAMEAD_REDIS__URL=redis_user, GAMEAD_LOG__LEVEL="DEBUG")
    procs.append(api)
    worker = start_worker(nats_url, tmp_path, worker_id="secrets-worker", GAMEAD_LOG__LEVEL="DEBUG")
    procs.append(worker)
    with httpx.Client(base_url=url, timeout=5) as c:
        ad_id = c.post("/ads", json=ad("Secret Sauce")).json()["id"]
        wait_for(lambda: c.get(f"/ads/{ad_id}").json()["status"] == "completed", timeout=20, what="the ad")
        stats = wait_for(lambda: (s := c.get("/v1/stats").json())["redis"] and s, what="the redis stats section")
        assert stats["redis"]["status"] == "ok"  # connected with the password…
        assert stats["redis"]["url"].startswith("redis://gamead-e2e:***@")  # …and shows it masked
        _assert_no_password(json.dumps(stats), c.get("/readyz").text, c.get("/v1/workers").text)
    assert "connected to NATS at nats://gamead:***@" in api.output()
    _assert_no_password(api.output(), worker.output())


def test_passwords_in_urls_never_reach_a_client_while_nats_is_down(
    redis_user: str, procs: list[Proc], tmp_path: Path, closed_port: Callable[[], int],
) -> None:
    dead = f"nats://gamead:{NATS_PW}@127.0.0.1:{closed_port()}"
    api, url = start_api(dead, tmp_path, ready=False, GAMEAD_REDIS__URL=redis_user)
    procs.append(api)

    def refused() -> httpx.Response | None:
        try:
            resp = httpx.post(f"{url}/ads", json=ad("Nobody Home"), timeout=2)
        except httpx.HTTPError:
            return None  # still starting
        return resp

    resp = wait_for(refused, timeout=20, what="the API to answer while NATS is down")
    assert resp.status_code == 503 and resp.json()["error"]["code"] == "queue_unavailable"
    readyz = httpx.get(f"{url}/readyz", timeout=2)
    assert readyz.status_code == 503
    _assert_no_password(resp.text, readyz.text)
    wait_for(lambda: "not reachable" in api.output(), timeout=10, what="the NATS warning in the log")
    _assert_no_password(api.output())
