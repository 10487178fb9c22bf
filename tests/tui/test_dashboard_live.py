"""The dashboard against a running stack on a real NATS: what it shows is what the stack holds."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from gamead_cli.client import ApiClient
from gamead_cli.tui import view_tables
from gamead_cli.tui.app import DashboardApp
from gamead_cli.tui.source import ApiSource
from gamead_cli.tui.screens import LevelScreen, RecordScreen, TypedConfirmScreen
from gamead_cli.tui.widgets import Banner, JobLine, SparkRow, SummaryBar
from gamead_cli.tui.widgets_tables import DlqTable, NodesTable
from tests.support import Proc, ad, wait_terminal
from tests.tui.conftest import TTL, Observed, press, row_keys, screen_text, serve, until

#: one pytest-xdist worker runs every module of the package's ``observed`` stack (started once)
pytestmark = pytest.mark.xdist_group("tui-observed")


@pytest.fixture
def api(observed: Observed) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=observed.url, timeout=10) as client:
        yield client


def dashboard(url: str, refresh: float = 0.5) -> DashboardApp:
    return DashboardApp(ApiSource(ApiClient(url, timeout=2.0)), refresh=refresh)


def waiting(stats: dict[str, Any]) -> dict[int, int]:
    return {lv["priority"]: lv["pending"] for lv in stats["queue"]["levels"]}


def shown_waiting(app: DashboardApp) -> dict[int, int]:
    """The PENDING figure of each level as the queue panel shows it."""
    out = {}
    for level in range(1, 6):
        figures = app.query_one(f"#level-{level}", SparkRow).text.split()
        out[level] = int(figures[1].replace(",", "")) if len(figures) > 1 and figures[1] != "-" else -1
    return out


def test_after_submitting_ads_the_panels_show_the_real_numbers(observed: Observed, api: httpx.Client) -> None:
    # No worker runs in this test: what is submitted stays waiting, level by level.
    before = waiting(api.get("/v1/stats").json())
    sent = {1: 2, 3: 1, 5: 3}
    for level, count in sent.items():
        for i in range(count):
            assert api.post("/ads", json=ad(f"Panel {level}.{i}", priority=level)).status_code == 202
    expected = {lvl: before[lvl] + sent.get(lvl, 0) for lvl in range(1, 6)}

    async def scenario() -> None:
        app = dashboard(observed.url)
        async with app.run_test(size=(120, 40)) as pilot:
            await until(pilot, lambda: shown_waiting(app) == expected,
                        what=f"queue panel to show {expected} (shows {shown_waiting(app)})")
            # the same numbers the API reports, and the API node itself in the nodes table and header
            assert waiting(api.get("/v1/stats").json()) == expected
            api_nodes = [n["id"] for n in api.get("/v1/workers").json()["items"] if n["role"] == "api"]
            await until(pilot, lambda: set(api_nodes) <= set(row_keys(app.query_one(NodesTable))),
                        what="the API node in the nodes table")
            header = str(app.query_one(SummaryBar).render())
            assert f"{len(api_nodes)} api" in header and "NATS" in header
            oldest = app.query_one("#level-5", SparkRow).text.split()[-2]  # OLDEST, then MAX
            assert oldest != "-"  # level 5 has ads waiting, so it has an oldest age

    asyncio.run(scenario())


def test_the_nodes_table_agrees_with_the_registry_of_the_shared_stack(api_url: str, client: httpx.Client) -> None:
    ids = [client.post("/ads", json=ad(f"Shared stack {i}")).json()["id"] for i in range(3)]
    for ad_id in ids:
        assert wait_terminal(client, ad_id)["status"] == "completed"

    def shown_processed(app: DashboardApp) -> int | None:
        table = app.query_one(NodesTable)
        if "session-worker" not in row_keys(table):
            return None
        return int(str(table.get_row("session-worker")[view_tables.NODE_COLUMNS.index("COMPLETED")]).replace(",", ""))

    async def scenario() -> None:
        app = dashboard(api_url)
        async with app.run_test(size=(120, 40)) as pilot:
            def agrees() -> bool:
                nodes = {n["id"]: n for n in client.get("/v1/workers").json()["items"]}
                shown = shown_processed(app)
                return shown is not None and shown >= len(ids) and shown == nodes["session-worker"]["processed"]

            await until(pilot, agrees, what="session-worker's processed count on screen")

    asyncio.run(scenario())


def test_a_killed_worker_is_gone_from_the_table_once_its_ttl_lapses(observed: Observed, procs: list[Proc]) -> None:
    """SIGKILL: only the registry's ttl removes the worker's entry, and the table follows: the row says ``gone``
    (attack25d #4: not silently dropped; the API lists it a while). How long that took is printed;
    the deadline is generous (a deadline of ttl + 4.5 s was an assertion on elapsed time, and one pilot pause
    took 5-6 s on a loaded machine)."""
    worker_id = f"doomed-{uuid.uuid4().hex[:6]}"
    worker = observed.worker(worker_id)
    procs.append(worker)

    async def scenario() -> float:
        app = dashboard(observed.url)
        async with app.run_test(size=(120, 40)) as pilot:
            table = app.query_one(NodesTable)
            await until(pilot, lambda: worker_id in row_keys(table), what=f"{worker_id} in the table")
            worker.kill()  # SIGKILL: no clean shutdown, no deletion — only the ttl removes it
            killed = time.monotonic()
            # expected: ttl, plus one heartbeat that may have landed just before the kill, one sample, one refresh
            state = view_tables.NODE_COLUMNS.index("STATE")
            await until(pilot, lambda: worker_id in row_keys(table)
                        and str(table.get_row(worker_id)[state]) == "gone", timeout=60,
                        what=f"{worker_id} to be gone in the table")
            assert app.error is None
            return time.monotonic() - killed

    gone_after = asyncio.run(scenario())
    print(f"killed worker gone in the dashboard {gone_after:.1f}s after SIGKILL (ttl {TTL:g}s)")


def test_selecting_a_dlq_entry_and_pressing_r_replays_it(
    observed: Observed, api: httpx.Client, procs: list[Proc]
) -> None:
    title = f"Replay me {uuid.uuid4().hex[:8]}"
    faulty = observed.worker(f"faulty-{uuid.uuid4().hex[:4]}", GAMEAD_WORKER__FAULTS__RATE="1",
                             GAMEAD_WORKER__FAULTS__MODE="permanent", GAMEAD_WORKER__FAULTS__MATCH=title)
    procs.append(faulty)
    ad_id = api.post("/ads", json=ad(title, priority=2)).json()["id"]
    record = wait_terminal(api, ad_id)
    assert record["status"] == "dead", record
    faulty.stop()  # the replayed ad must find a healthy worker, not the faulty one

    async def scenario() -> None:
        app = dashboard(observed.url)
        async with app.run_test(size=(120, 40)) as pilot:
            table = app.query_one(DlqTable)
            await until(pilot, lambda: ad_id in row_keys(table), what="the dead ad in the DLQ panel")
            assert app.dlq_error is None, app.dlq_error
            table.focus()
            table.move_cursor(row=row_keys(table).index(ad_id), animate=False)
            await press(pilot, "space", "r")
            dialog = await until(pilot, lambda: isinstance(app.screen, TypedConfirmScreen) and app.screen,
                                 what="the replay confirmation")
            assert ad_id in dialog.detail
            await press(pilot, "1", "enter")
            await until(pilot, lambda: ad_id not in row_keys(table), what="the entry to leave the DLQ")
            assert app.error is None
            # one server-side job, its progress on the job line, then its record in the audit panel
            job = await until(pilot, lambda: app.job, what="the job line")
            assert job["kind"] == "replay" and "replay job" in str(app.query_one(JobLine).render())
            assert job["selection"]["mode"] == "ids"
            await until(pilot, lambda: any(r.get("action") == "replay" and r.get("ads") == 1
                                           for r in (app.audit or {}).get("items") or []),
                        what="the replay in the audit panel")

    asyncio.run(scenario())
    assert api.get(f"/v1/dlq/{ad_id}").status_code == 404
    procs.append(observed.worker(f"healthy-{uuid.uuid4().hex[:4]}"))
    assert wait_terminal(api, ad_id)["status"] == "completed"


def test_the_api_going_away_shows_the_banner_and_the_dashboard_recovers(observed: Observed, procs: list[Proc]) -> None:
    first, url = serve(observed.nats.url, None, observed.logs)
    port = int(url.rsplit(":", 1)[1])  # the restart below comes back on the same port
    procs.append(first)

    async def scenario() -> None:
        app = dashboard(url, refresh=0.3)
        async with app.run_test(size=(120, 40)) as pilot:
            banner = app.query_one(Banner)
            await until(pilot, lambda: app.stats is not None, what="first stats")
            node_before = app.stats["node"]
            assert not banner.display

            first.stop()
            await until(pilot, lambda: banner.display, what="the banner")
            assert "API unreachable" in str(banner.message) and "retrying" in str(banner.message)
            assert app.stats is not None  # the last numbers stay on screen under the banner
            await until(pilot, lambda: app.failures >= 2, what="a few retries")

            second, _ = serve(observed.nats.url, port, observed.logs)
            procs.append(second)
            await until(pilot, lambda: not banner.display and app.stats["node"] != node_before,
                        what="the dashboard to recover on the restarted API")
            assert app.error is None

    asyncio.run(scenario())


def test_colon_level_lists_the_oldest_waiting_ads_and_enter_shows_one(observed: Observed, api: httpx.Client) -> None:
    # No worker runs in this test: the ads stay waiting at level 4, oldest first on screen
    # (GET /v1/levels/4/oldest: the work stream from the level's ack floor).
    tag = uuid.uuid4().hex[:6]
    ids = [api.post("/ads", json=ad(f"Drill {tag} {i}", priority=4)).json()["id"] for i in range(3)]

    async def scenario() -> None:
        app = dashboard(observed.url)
        async with app.run_test(size=(120, 40)) as pilot:
            await until(pilot, lambda: app.stats is not None, what="first stats")
            await press(pilot, "colon", *"level 4", "enter")
            screen = await until(pilot, lambda: isinstance(app.screen, LevelScreen) and app.screen.loaded
                                 and app.screen, what="level 4's ads")
            table = screen.query_one("#level-table")
            keys = row_keys(table)
            assert [k for k in keys if k in ids] == ids  # oldest first
            row = [str(c) for c in table.get_row(ids[0])]
            assert row[1] == "pending" and row[3] == "0" and row[4] == "-"  # no attempt, no worker yet
            table.move_cursor(row=keys.index(ids[1]), animate=False)
            await press(pilot, "enter")
            # the screen is pushed before its record is drawn (a loaded run read '' there): wait for what it shows
            await until(pilot, lambda: isinstance(app.screen, RecordScreen) and f"Drill {tag} 1" in screen_text(app),
                        what="the ad's record")
            assert f"dashboard › P4 › ad {ids[1]}" in screen_text(app)
            await press(pilot, "escape", "escape")
            await until(pilot, lambda: not isinstance(app.screen, (LevelScreen, RecordScreen)), what="back")

    asyncio.run(scenario())


def test_the_job_line_follows_a_replay_to_its_end(observed: Observed, api: httpx.Client, procs: list[Proc]) -> None:
    """regress41b F4: a replay from the dashboard followed its job's progress only until the job was past acting
    on its entries, so the job line stayed at ``replay job …: running (following) · … · completed 0 · deadAgain 0
    · stillRunning 12`` for as long as the dashboard ran, while ``gamead dlq jobs`` said succeeded, completed 10,
    dead again 2. Now each refresh reads the job until it has ended, and the counts are words. Figure: the line
    once the replayed ad completed (a worker started once the job was following it); without the fix ``running
    (following) · … · stillRunning 1`` (timed out)."""
    title = f"Follow me {uuid.uuid4().hex[:8]}"
    faulty = observed.worker(f"faulty-{uuid.uuid4().hex[:4]}", GAMEAD_WORKER__FAULTS__RATE="1",
                             GAMEAD_WORKER__FAULTS__MODE="permanent", GAMEAD_WORKER__FAULTS__MATCH=title)
    procs.append(faulty)
    ad_id = api.post("/ads", json=ad(title, priority=2)).json()["id"]
    assert wait_terminal(api, ad_id)["status"] == "dead"
    faulty.stop()  # no worker: the job stays following its replayed ad until one starts

    async def scenario() -> str:
        app = dashboard(observed.url)
        async with app.run_test(size=(200, 50)) as pilot:
            table = app.query_one(DlqTable)
            await until(pilot, lambda: ad_id in row_keys(table), what="the dead ad in the DLQ panel")
            table.focus()
            table.move_cursor(row=row_keys(table).index(ad_id), animate=False)
            await press(pilot, "space", "r")
            await until(pilot, lambda: isinstance(app.screen, TypedConfirmScreen), what="the replay confirmation")
            await press(pilot, "1", "enter")
            line = app.query_one(JobLine)
            await until(pilot, lambda: (app.job or {}).get("phase") == "following",
                        what="the job past acting, following its ad")
            procs.append(observed.worker(f"healthy-{uuid.uuid4().hex[:4]}"))  # the replayed ad completes
            try:
                await until(pilot, lambda: (app.job or {}).get("state") == "succeeded", timeout=30,
                            what="the job line to say the job succeeded")
            finally:
                print(f"job line: {line.render()}")
            return str(line.render())

    shown = asyncio.run(scenario())
    assert ": succeeded" in shown and "completed 1" in shown and "dead again 0" in shown, shown
    assert api.get(f"/ads/{ad_id}").json()["status"] == "completed"
