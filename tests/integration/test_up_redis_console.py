"""``gamead up``'s console says when its API cannot use Redis, and when it can again (attack41a F4)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.redis_fixtures import ValkeyProc
from tests.support import up_stack, wait_for

UNUSABLE = "the API cannot use Redis (redis.url) for "
AGAIN = "the API uses Redis (redis.url) again after "


@pytest.mark.timeout(300)
def test_a_redis_down_at_the_start_is_said_on_the_console_and_its_return_too(
        fresh_valkey: Callable[[], ValkeyProc], tmp_path: Path) -> None:
    """attack41a F4: ``GAMEAD_REDIS__URL`` naming a port nothing listens on (or a Valkey killed, or full with
    ``noeviction``): ``gamead up``'s console said nothing, ever; only ``/readyz`` (200, ``redis: degraded: cannot
    connect: connection refused (circuit open)``), ``gamead doctor`` and api.log did. Now, past ``registry.ttl``
    (here 3 s), one line names the check's text and what it costs, and one says when Redis is used again. With
    the fix: passed; without it (up_liveness.py of c53a44be): no such line, failed."""
    valkey = fresh_valkey()
    valkey.kill()  # its port, with nothing on it
    (tmp_path / "config.yaml").write_text("registry: {ttl: 3, heartbeat_interval: 0.5}\n")
    up = up_stack(tmp_path, "--workers", "0", "--no-autoscale", GAMEAD_REDIS__URL=valkey.url,
                  GAMEAD_LOG__LEVEL="WARNING").start()
    try:
        up.wait_ready()
        wait_for(lambda: UNUSABLE in up.output(), timeout=60, what="gamead up to say Redis is unusable")
        line = next(ln for ln in up.output().splitlines() if UNUSABLE in ln)
        assert "(registry.ttl 3s): degraded: cannot connect: connection refused" in line, line
        assert "each API node counts rate limits on its own" in line and "redis_unwritable" in line, line
        valkey.start()  # on the same port
        wait_for(lambda: AGAIN in up.output(), timeout=60, what="gamead up to say Redis is used again")
        assert up.output().count(UNUSABLE) == 1 and up.output().count(AGAIN) == 1, up.output()
    finally:
        up.kill_everything()
        valkey.stop()
