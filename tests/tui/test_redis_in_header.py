"""The dashboard's header says when the API cannot use its Redis, and stops saying it once it can (tui42 F3).

The ads flow without Redis, but the rate limits are counted per node and the cache is bypassed meanwhile; ``/readyz``
says ``degraded`` and ``/v1/stats`` ``redis.status`` why. Before, with the Valkey killed, ``gamead top`` showed no
change at all (1 of 1 drill: nothing on screen, nor in ``top --once``, named Redis). Now the header says ``redis
degraded: cannot connect: …`` until Redis is usable again. Without the fix this test fails waiting for those words in
the header; with it, it passes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from gamead_cli.client import ApiClient
from gamead_cli.tui.app import DashboardApp
from gamead_cli.tui.source import ApiSource
from gamead_cli.tui.widgets import SummaryBar
from tests.redis_fixtures import ValkeyProc
from tests.support import Proc
from tests.tui.conftest import Observed, serve, until

pytestmark = pytest.mark.xdist_group("tui-observed")


def test_the_header_says_redis_is_unusable_while_it_is(observed: Observed, procs: list[Proc],
                                                        fresh_valkey: Callable[[], ValkeyProc]) -> None:
    valkey = fresh_valkey()
    api, url = serve(observed.nats.url, None, observed.logs, GAMEAD_REDIS__URL=valkey.url,
                     GAMEAD_REDIS__BREAKER_RESET="0.5")
    procs.append(api)

    async def scenario() -> None:
        app = DashboardApp(ApiSource(ApiClient(url, timeout=2.0)), refresh=0.3)
        async with app.run_test(size=(160, 40)) as pilot:
            header = app.query_one(SummaryBar)

            def said() -> str:
                return str(header.render())

            await until(pilot, lambda: app.stats is not None and (app.stats.get("redis") or {}).get("status") == "ok",
                        what="the API using its Redis")
            assert "redis" not in said()
            valkey.kill()
            await until(pilot, lambda: "redis degraded: cannot connect" in said(),
                        what="the header to say Redis is unusable")  # before: nothing, ever
            valkey.start()
            await until(pilot, lambda: "redis" not in said(), what="the header to drop it once usable")

    asyncio.run(scenario())
