"""fix56c, made deterministic (upreconnect57): ``gamead up``'s own NATS connection (its autoscaler, liveness probe and
recovery of dead workers' ads) closed by NATS for good. Before fix56c, ``up`` said ``autoscaler: cannot observe the
queue: NATS is not connected`` for ever once nats-py closed it, even with nats-server whole again. Now it says once
that NATS closed its connection, connects again with a back-off, says when it is back, and its autoscaler leads again.

Its new connections, refused while the server requires another token, are said with the back-off (before: nats-py
tried every 0.5 s in silence, and up said nothing more until the token was back).

The close: the embedded nats-server reloaded (SIGHUP) with another token in its ``authorization`` block disconnects
every client that authenticated with the old one, ``-ERR 'Authorization Violation'`` written before the socket is
closed (nats-server ``reloadAuthorization`` → ``authViolation``), and nats-py closes a client for good on that error
(``Client._process_err``): 50 of 50 plain clients closed so in a drill, 30 of them beside 3 CPU burners. Its
reconnects are refused until the token is restored. (The drill before, a reload with a smaller ``max_payload``,
closed it only sometimes: the server may hand the client the new limit first, and the client then refuses its own
write with the connection open.)"""

from __future__ import annotations

import json
import os
import signal
import time
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from tests.support import clean_env, run_gamead, up_stack, wait_for

FAST = {"GAMEAD_WORKER__DRAIN_TIMEOUT": "3", "GAMEAD_QUEUE__ACK_WAIT": "5", "GAMEAD_LOG__LEVEL": "WARNING",
        "GAMEAD_AUTOSCALER__INTERVAL": "1", "GAMEAD_REGISTRY__HEARTBEAT_INTERVAL": "1",
        "GAMEAD_EMBEDDED__RESTART_BACKOFF_CAP": "2"}  # the API and the worker, refused meanwhile, back soon after
LOST = "NATS closed the connection: authorization failed of gamead up itself"
REFUSED = "gamead up cannot connect to NATS again yet (NATS refuses our credentials: Authorization Violation)"
BACK = "gamead up is connected to NATS again"


def _scale(url: str) -> dict[str, object] | None:
    """``GET /v1/scale`` (None while the API, refused by NATS too, restarts)."""
    try:
        resp = httpx.get(f"{url}/v1/scale", timeout=5)
        return resp.json() if resp.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        return None


def _leads(url: str, since: float) -> bool:
    """``gamead up``'s autoscaler is the leader, fresh, and has recorded after ``since`` (epoch s)."""
    doc = _scale(url) or {}
    leader = doc.get("leader") or {}
    updated = doc.get("updatedAt")
    return (str(leader.get("id", "")).startswith("up-") and doc.get("stale") is False and isinstance(updated, str)
            and datetime.fromisoformat(updated.replace("Z", "+00:00")).timestamp() > since)


@pytest.mark.timeout(300)  # a stack's start, its children's refusals and restarts
def test_up_connects_again_when_nats_closes_its_own_connection_for_good(tmp_path: Path) -> None:
    up = up_stack(tmp_path, "--workers", "1", **FAST).start()
    try:
        up.wait_ready()
        wait_for(lambda: _leads(up.url, 0), timeout=60, what="gamead up's autoscaler leading")
        conf = up.data_dir / "nats.conf"
        whole, token = conf.read_text(encoding="utf-8"), up.nats_token
        assert whole.count(json.dumps(token)) == 1, whole
        conf.write_text(whole.replace(json.dumps(token), json.dumps(token + "-rotated")), encoding="utf-8")
        os.kill(up.pid_of("nats-server"), signal.SIGHUP)  # every client of the old token closed, reconnects refused
        wait_for(lambda: LOST in up.output(), timeout=60, what="gamead up to say NATS closed its connection")
        wait_for(lambda: REFUSED in up.output(), timeout=60, what="gamead up to say its new connection is refused")
        conf.write_text(whole, encoding="utf-8")
        os.kill(up.pid_of("nats-server"), signal.SIGHUP)  # the stack's token accepted again
        wait_for(lambda: BACK in up.output(), timeout=60, what="gamead up to say it is connected to NATS again")
        back = time.time()
        wait_for(lambda: _leads(up.url, back), timeout=90, interval=0.5,
                 what="gamead up's autoscaler leading again, recording after it was back")
        status = run_gamead("scale", "status", "-o", "json", "--api", up.url, env=clean_env(), timeout=60)
        assert status.returncode == 0, status.stderr
        doc = json.loads(status.stdout)
        assert str(doc["leader"]["id"]).startswith("up-") and doc["stale"] is False, doc
        out = up.output()
        assert out.count(LOST) == 1, out[-3000:]
        # up's own words of a closed connection before fix56c (its children's closed clients are theirs to say)
        assert "could not recover what worker" not in out and "cannot observe the queue" not in out, out[-3000:]
        assert "Traceback" not in out, out[-3000:]
    finally:
        up.stop()
