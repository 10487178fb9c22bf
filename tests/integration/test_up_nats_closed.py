"""fix56c: ``gamead up``'s own NATS connection (its autoscaler, liveness probe and recovery of dead workers' ads)
closed by NATS for good (``Maximum Payload Violation`` from a nats-server reloaded with a smaller ``max_payload``).
Before, its API and workers exited 3 and were restarted, but ``up`` itself said ``could not recover what worker
local-1 held: NATS is unavailable: ConnectionClosedError`` and ``autoscaler: cannot observe the queue: NATS is not
connected`` for ever, even once nats-server ran whole again. Now it says once that NATS closed its connection,
connects again with a back-off, says when it is back, and its autoscaler leads again."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import httpx
import pytest

from tests.support import up_stack, wait_for

FAST = {"GAMEAD_WORKER__DRAIN_TIMEOUT": "3", "GAMEAD_QUEUE__ACK_WAIT": "5", "GAMEAD_LOG__LEVEL": "WARNING",
        "GAMEAD_AUTOSCALER__INTERVAL": "1", "GAMEAD_REGISTRY__HEARTBEAT_INTERVAL": "1"}
LOST = "NATS closed the connection: maximum payload violation of gamead up itself"


def _fresh_leader(url: str) -> bool:
    """``GET /v1/scale`` names ``gamead up``'s autoscaler as the leader and its record is fresh."""
    try:
        doc = httpx.get(f"{url}/v1/scale", timeout=5).json()
    except (httpx.HTTPError, ValueError):
        return False
    leader = doc.get("leader") or {}
    return str(leader.get("id", "")).startswith("up-") and doc.get("stale") is False


@pytest.mark.timeout(300)  # a stack's start, its children's exit 3 and restarts, a nats-server restart
def test_up_connects_again_when_nats_closes_its_own_connection_for_good(tmp_path: Path) -> None:
    up = up_stack(tmp_path, "--workers", "1", **FAST).start()
    try:
        up.wait_ready()
        wait_for(lambda: _fresh_leader(up.url), timeout=60, what="gamead up's autoscaler leading")
        conf = up.data_dir / "nats.conf"
        whole = conf.read_text(encoding="utf-8")
        conf.write_text(whole + "max_payload: 64\n", encoding="utf-8")
        os.kill(up.pid_of("nats-server"), signal.SIGHUP)  # its next lease write (> 64 bytes) closes it for good
        wait_for(lambda: LOST in up.output(), timeout=60, what="gamead up to say NATS closed its connection")
        wait_for(lambda: "gamead up is connected to NATS again" in up.output(), timeout=60,
                 what="gamead up connected to NATS again")
        # nats-server whole again (its setting back, restarted by up after a kill): every client reconnects
        conf.write_text(whole, encoding="utf-8")
        os.kill(up.pid_of("nats-server"), signal.SIGKILL)
        wait_for(lambda: _fresh_leader(up.url), timeout=90, what="gamead up's autoscaler leading again")
        out = up.output()
        assert out.count(LOST) == 1, out[-3000:]
        assert "ConnectionClosedError" not in out and "Traceback" not in out, out[-3000:]
    finally:
        up.stop()
