"""The banner over figures that are no longer live says how old they are (tui42 F1).

Every age on screen (a node's HEARTBEAT ``3.6s ago``, a level's OLDEST, a DLQ page's ``as of``) was counted when the
last answer came. Before, with the API stopped (SIGSTOP) the nodes table went on saying ``ok`` and ``3.6s ago`` for
minutes under a banner that named the failure and the attempt, not the figures' age (2 of 2 drills; the panels are
only dimmed, which a piped or colourless terminal does not show). Now the banner says ``the figures below are the
last answer's, 4.0s old, not live``, its age growing at each retry, and goes when the API answers again.
Without the fix this test fails at its first assert (no such words in the banner); with it, it passes.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
from typing import Any

import pytest

from gamead_cli.client import ApiClient
from gamead_cli.tui.app import DashboardApp
from gamead_cli.tui.source import ApiSource
from gamead_cli.tui.widgets import Banner
from gamead_core.errors import ApiUnreachable
from tests.support import Proc
from tests.tui.test_dashboard_offline import CountingSource, run
from tests.tui.conftest import Observed, serve, until

pytestmark = pytest.mark.xdist_group("tui-observed")

AGE = re.compile(r"the figures below are the last answer's, (\d+(?:\.\d+)?)s old, not live")


def said_age(banner: Banner) -> float | None:
    """The figures' age (s) the banner says, None when it says none."""
    found = AGE.search(str(banner.message or ""))
    return float(found.group(1)) if found else None


def test_a_stopped_api_s_banner_says_how_old_the_figures_are(observed: Observed, procs: list[Proc]) -> None:
    api, url = serve(observed.nats.url, None, observed.logs)
    procs.append(api)

    async def scenario() -> None:
        app = DashboardApp(ApiSource(ApiClient(url, timeout=2.0)), refresh=0.3)
        async with app.run_test(size=(120, 40)) as pilot:
            banner = app.query_one(Banner)
            await until(pilot, lambda: app.stats is not None, what="first stats")
            os.kill(api.pid, signal.SIGSTOP)
            try:
                await until(pilot, lambda: banner.display, what="the banner")
                first = said_age(banner)
                assert first is not None, banner.message  # before: "⚠ API slow — … (attempt 1)", no age
                await until(pilot, lambda: (said_age(banner) or 0) >= first + 1,
                            what="the banner's age to grow with the outage")
            finally:
                os.kill(api.pid, signal.SIGCONT)
            await until(pilot, lambda: not banner.display, what="the banner to go once it answers")
            assert app.error is None

    asyncio.run(scenario())


def test_the_stale_banner_s_age_ticks_between_refreshes(recorded: dict[str, Any]) -> None:
    """attack42c F6: the banner's age of the figures was counted only when a refresh failed, so between two
    refreshes (``--refresh 30``) it stood still and said the figures were up to a refresh younger than they were.
    A failed refresh with ``--refresh`` 3600 (no other refresh comes): the age it says grows by 2 s while nothing
    else is asked. Without the fix it stayed at its first figure (timed out, 1 of 1); with it, it passes."""
    source = CountingSource(recorded)

    async def scenario(app: DashboardApp, pilot: Any) -> None:
        banner = app.query_one(Banner)
        source.failure = ApiUnreachable("cannot reach the gamead API at http://recorded (connection refused)")
        app.refresh_now()
        await until(pilot, lambda: banner.display, what="the banner")
        first, asked = said_age(banner), source.refreshes
        assert first is not None, banner.message
        await until(pilot, lambda: (said_age(banner) or 0) >= first + 2, what="the banner's age to tick")
        assert source.refreshes == asked, "another refresh, not the banner's own tick, moved the age"

    run(source, scenario, refresh=3600)
