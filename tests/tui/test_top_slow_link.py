"""attack33b F2: the live ``gamead top`` over a slow link to the API.

Before: every answer over a 2 s RTT link took longer than the dashboard's wait (2 × --refresh, at least 2 s, at most
client.timeout) and the banner said "API unreachable" for ever, naming no knob. Now it says the API is slow: it got
the request and gave no answer within the wait, which it names with the knob that raises it (--refresh).

A real API (the session stack), a TCP proxy in front of it that holds every answer (tests/link_proxy.py), the
dashboard run headless (Textual's Pilot)."""

from __future__ import annotations

import asyncio

from gamead_cli.client import ApiClient
from gamead_cli.tui.app import DashboardApp
from gamead_cli.tui.source import ApiSource
from gamead_cli.tui.widgets import Banner
from tests.link_proxy import LinkProxy
from tests.tui.conftest import until

#: the live dashboard's wait at --refresh 1 (gamead_cli.commands.top: 2 × --refresh, at least 2 s)
WAIT = 2.0


def test_a_slow_api_is_called_slow_with_the_wait_and_its_knob_not_unreachable(api_url: str) -> None:
    proxy = LinkProxy(("127.0.0.1", int(api_url.rsplit(":", 1)[1])), delay=WAIT + 1.5).start()
    client = ApiClient(proxy.url, timeout=WAIT, max_connections=4)

    async def main() -> None:
        app = DashboardApp(ApiSource(client), refresh=1.0)
        async with app.run_test(size=(160, 40)) as pilot:
            banner = app.query_one(Banner)
            await until(pilot, lambda: banner.display, what="the banner")
            said = str(banner.message)
            assert "⚠ API slow" in said and "unreachable" not in said, said
            assert f"gave no answer within {WAIT:g} s, the live dashboard's wait" in said, said
            assert "2 × --refresh" in said and "a larger --refresh waits longer" in said, said

    try:
        asyncio.run(main())
    finally:
        client.close()
        proxy.stop()
