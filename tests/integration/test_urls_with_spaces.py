"""A ``redis.url`` or ``nats.url`` pasted with spaces around it (reread57: the kind of 5ea55985's API URL). Its check
read it stripped and the process kept it as given: ``GAMEAD_REDIS__URL=' redis://…'`` passed the config and then
``gamead serve``'s start-up failed with a traceback (redis-py: "Redis URL must specify one of the following
schemes"); ``GAMEAD_NATS__URL=' '``, unset to the check, was a NATS at no address (``gamead up``: ``using NATS at``
and nothing; ``gamead worker``: ``cannot connect to NATS at :``, exit 3). Both are now taken without the spaces."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from gamead_cli import exitcodes
from gamead_core.embedded import EmbeddedNats
from tests.redis_fixtures import ValkeyProc
from tests.support import Proc, clean_env, run_gamead, start_api, wait_for


@pytest.mark.timeout(120)
def test_a_redis_url_pasted_with_spaces_around_it_reaches_redis(
    fresh_nats: Callable[[], EmbeddedNats], valkey_server: ValkeyProc, procs: list[Proc], tmp_path: Path,
) -> None:
    api, url = start_api(fresh_nats().url, tmp_path, GAMEAD_REDIS__URL=f" {valkey_server.url} ")
    procs.append(api)
    # the node's Redis health check, a write each second: "ok" once one is stored (a loaded machine may miss one)
    wait_for(lambda: httpx.get(f"{url}/readyz", timeout=10).json()["checks"]["redis"] == "ok", timeout=30,
             what="/readyz: redis ok")


def test_a_nats_url_of_spaces_alone_is_unset(tmp_path: Path) -> None:
    run = run_gamead("worker", env=clean_env(GAMEAD_NATS__URL=" ", GAMEAD_NATS__GIVE_UP_AFTER="1"), cwd=tmp_path,
                     timeout=60)
    lines = run.stderr.strip().splitlines()
    assert run.returncode == exitcodes.CONFIG, (run.returncode, run.stderr)
    assert len(lines) == 1 and "nats.url is not set" in lines[0], lines
