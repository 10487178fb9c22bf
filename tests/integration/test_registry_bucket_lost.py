"""A nats-server restart lists no live node ``gone`` (gone43; attack43b item 2), on a real nats-server, a real
``gamead serve`` and a real ``gamead worker``: the registry bucket is memory-stored, so a restarted server starts
it empty, and the API's next read missed every node that had not beaten again yet."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from gamead_core.embedded import EmbeddedNats
from tests.support import start_api, start_worker, wait_for

#: beats 4 s apart (ttl 20 s): the emptied registry stays without both nodes for seconds after the restart, over
#: several of the API's 1 s samples
BEATS = {"GAMEAD_REGISTRY__HEARTBEAT_INTERVAL": "4", "GAMEAD_REGISTRY__TTL": "20"}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[EmbeddedNats]:
    s = EmbeddedNats(tmp_path / "nats").start()
    yield s
    s.stop()


def _at(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def test_a_nats_restart_lists_neither_the_api_nor_a_live_worker_gone(server: EmbeddedNats, tmp_path: Path) -> None:
    """nats-server SIGKILLed and started again (its memory store emptied) while an API and a worker run: every
    ``/v1/workers`` answer until both have beaten into the new bucket lists both, never ``gone`` (their entries
    were lost with the bucket, not expired: :func:`gamead_core.registry.gone.lost_early`). Without the rule the
    answers after the restart listed both ``gone`` until their next beats (failed: ``{'w-live': 'gone',
    'api-…': 'gone'}``); with it: passed."""
    api, url = start_api(server.url, tmp_path, **BEATS)
    worker = start_worker(server.url, tmp_path, worker_id="w-live", ready=True, **BEATS)
    seen: list[dict[str, str]] = []  # every answer's states by node id, from the restart on

    def states() -> dict[str, dict[str, object]]:
        return {n["id"]: n for n in httpx.get(f"{url}/v1/workers", timeout=5).json()["items"]}

    try:
        nodes = wait_for(lambda: (s := states()) and {"w-live", *(i for i in s if i.startswith("api-"))} <= set(s)
                         and len(s) == 2 and all(n["state"] in ("ok", "idle") for n in s.values()) and s,
                         timeout=30, what="the API and the worker listed, beating")
        ids = set(nodes)
        restarted = time.time()  # a beat after this one is into the restarted server (it is down between)
        server.kill()
        server.start()

        def both_beat_again() -> bool:
            now = states()
            seen.append({i: str(n["state"]) for i, n in now.items()})
            return ids <= set(now) and all(_at(str(now[i]["heartbeatAt"])) > restarted for i in ids)

        wait_for(both_beat_again, timeout=60, what="both nodes beating into the restarted nats-server")
        assert len(seen) >= 2, seen  # the answers between the restart and the beats were looked at
        wrong = [s for s in seen if set(s) != ids or "gone" in s.values()]
        assert not wrong, wrong
    finally:
        worker.stop()
        api.stop()
