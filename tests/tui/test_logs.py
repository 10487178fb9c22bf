"""The live log tail (``:logs WORKER``, ``:logs ad AD_ID``, ``l`` on a node): bounded reads of real files, and
the screen on a live stack whose worker writes its JSON log while the screen is open."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from pathlib import Path

import httpx
import pytest

from gamead_cli.client import ApiClient
from gamead_cli.tui.app import DashboardApp
from gamead_cli.tui.logs import TAIL_BYTES, FileTail, LogFollower, LogsUnavailable, default_log_dir, follower
from gamead_cli.tui.screens import LogScreen
from gamead_cli.tui.source import ApiSource
from gamead_cli.tui.widgets_tables import NodesTable
from tests.support import ad, wait_for, wait_worker_ready
from tests.tui.conftest import DEADLINE, Observed, press, raised_toasts, until

pytestmark = pytest.mark.xdist_group("tui-observed")


def line(n: int, **fields: object) -> str:
    return json.dumps({"ts": f"2026-01-01T00:00:{n % 60:02d}+0000", "level": "INFO", "logger": "t",
                       "message": f"line {n}", **fields}) + "\n"


def test_a_tail_reads_at_most_its_limit_then_only_what_is_appended(tmp_path: Path) -> None:
    log = tmp_path / "worker-1.log"
    log.write_text("".join(line(n) for n in range(5000)))  # ~500 KiB
    assert log.stat().st_size > 4 * TAIL_BYTES
    tail = FileTail(log)
    first = tail.read()
    assert sum(len(x) + 1 for x in first) <= TAIL_BYTES  # the last 64 KiB only, whole lines
    assert json.loads(first[-1])["message"] == "line 4999" and json.loads(first[0])  # no broken first line
    assert tail.read() == []  # nothing new
    with log.open("a") as fh:
        fh.write(line(5000) + '{"message": "half a li')
    assert [json.loads(x)["message"] for x in tail.read()] == ["line 5000"]  # the half line waits
    with log.open("a") as fh:
        fh.write('ne"}\n')
    assert tail.read() == ['{"message": "half a line"}']
    log.write_text(line(1))  # rotated / truncated: read again from the start
    assert [json.loads(x)["message"] for x in tail.read()] == ["line 1"]


def test_an_ad_story_merges_every_log_by_time_and_names_are_never_paths(tmp_path: Path) -> None:
    ad_id = "01" + "a" * 24
    (tmp_path / "api.log").write_text(line(1, ad_id=ad_id) + line(2) + line(4, ad_id=ad_id))
    (tmp_path / "worker-2.log").write_text(line(3, ad_id=ad_id) + "not json\n")
    story = follower(tmp_path, ["ad", ad_id]).read()
    assert [s.split()[0] for s in story] == ["[api]", "[worker-2]", "[api]"]
    assert all(f"ad_id={ad_id}" in s for s in story)
    assert follower(tmp_path, ["local-2"]).read()[-1] == "not json"  # gamead up's worker id → its file
    assert len(follower(tmp_path, ["api-host-123"]).read()) == 3  # an API node → gamead up's api.log
    for bad in (["../etc/passwd"], ["/etc/passwd"], ["ad", "not-an-id"], ["nobody"]):
        with pytest.raises(LogsUnavailable):
            follower(tmp_path, bad)
    with pytest.raises(LogsUnavailable, match="not reachable"):
        follower(None, ["local-1"])
    assert default_log_dir(tmp_path, "http://127.0.0.1:8080") is None  # no gamead-up.json: no default


def test_an_ad_story_has_the_lines_that_name_it_among_several_ads(tmp_path: Path) -> None:
    """attack29a F12: a worker's "handing back N prefetched ads" line named no ad, so an ad's story had nothing
    explaining its extra delivery. The line carries ``ad_ids`` (the first 20); the story shows it."""
    ad_id, other = "01" + "a" * 24, "01" + "c" * 24
    (tmp_path / "worker-1.log").write_text(line(1, ad_id=ad_id) + line(2, ad_ids=[other, ad_id], count=2)
                                           + line(3, ad_ids=[other], count=1))
    story = follower(tmp_path, ["ad", ad_id]).read()
    assert [s.split("line ")[-1].split()[0] for s in story] == ["1", "2"], story


def test_the_local_logs_are_shown_only_under_the_dashboard_of_the_api_of_the_stack_running_there(
        tmp_path: Path) -> None:
    """stack14: ``gamead top --api <stack B>`` run in stack C's directory showed C's worker logs under B's
    dashboard. The logs of the stack on the data dir are the default only if it runs (its ``up`` PID alive, the
    same process: start time) and the API watched is its own (``apiUrl`` in its gamead-up.json)."""
    import subprocess

    from gamead_core.proc import start_time

    state = tmp_path / "gamead-up.json"
    here = {"pid": os.getpid(), "pidStart": start_time(os.getpid()), "apiUrl": "http://127.0.0.1:18630",
            "started": []}  # this test process stands for the running `gamead up`
    state.write_text(json.dumps(here))
    assert default_log_dir(tmp_path, "http://127.0.0.1:18630") == tmp_path / "logs"
    assert default_log_dir(tmp_path, "http://localhost:18630/") == tmp_path / "logs"  # the same API
    assert default_log_dir(tmp_path, "http://127.0.0.1:8080") is None  # another stack's API: not these logs
    assert default_log_dir(tmp_path, "https://127.0.0.1:18630") is None
    state.write_text(json.dumps({**here, "pidStart": (here["pidStart"] or 0) + 1}))  # the PID reused since
    assert default_log_dir(tmp_path, "http://127.0.0.1:18630") is None
    gone = subprocess.Popen(["true"])
    gone.wait()
    state.write_text(json.dumps({**here, "pid": gone.pid}))  # a stale file: its up is dead
    assert default_log_dir(tmp_path, "http://127.0.0.1:18630") is None
    for doc in ("{}", "[]", "not json", json.dumps({**here, "apiUrl": None})):  # no URL recorded: no default
        state.write_text(doc)
        assert default_log_dir(tmp_path, "http://127.0.0.1:18630") is None


def test_logs_not_reachable_is_one_line() -> None:
    async def scenario() -> None:
        app = DashboardApp(ApiSource(ApiClient("http://127.0.0.1:9", timeout=0.5)), refresh=3600)
        async with app.run_test(size=(120, 40)) as pilot:
            app.run_command_line("logs local-1")
            notes = await until(pilot, lambda: any(m.startswith("logs not reachable") for m in raised_toasts(app))
                                and raised_toasts(app), what="the 'logs not reachable' toast")
            assert any(m.startswith("logs not reachable") and "--logs DIR" in m and "\n" not in m for m in notes)
            assert not isinstance(app.screen, LogScreen)

    asyncio.run(scenario())


def test_the_log_screen_follows_a_live_worker_and_an_ads_story(observed: Observed) -> None:
    wid = f"logs-{uuid.uuid4().hex[:6]}"
    title = f"Log tail {wid}"
    worker = observed.worker(wid, GAMEAD_WORKER__FAULTS__RATE="1", GAMEAD_WORKER__FAULTS__MODE="permanent",
                             GAMEAD_WORKER__FAULTS__MATCH=title)
    try:
        wait_worker_ready(worker)

        async def scenario() -> None:
            app = DashboardApp(ApiSource(ApiClient(observed.url, timeout=2.0)), refresh=0.5, log_dir=observed.logs)
            async with app.run_test(size=(120, 40)) as pilot:
                table = app.query_one(NodesTable)
                await until(pilot, lambda: wid in {k for k, _ in table._rows}, what=f"{wid} in the nodes table")
                table.filter_text = wid
                table.focus()
                await press(pilot, "l")  # the key on a node
                screen = await until(pilot, lambda: isinstance(app.screen, LogScreen) and app.screen,
                                     what="the log screen")
                assert isinstance(screen, LogScreen)
                await until(pilot, lambda: "worker started" in screen.text(), what="the worker's start line")
                # while the screen is open, the worker logs an ad's fault: the line shows up
                ad_id = httpx.post(f"{observed.url}/ads", json=ad(title), timeout=10).json()["id"]
                fault = f"injecting a permanent fault into ad {ad_id}"
                await until(pilot, lambda: fault in screen.text(), what="the fault line, followed")
                await press(pilot, "escape")
                await until(pilot, lambda: not isinstance(app.screen, LogScreen), what="back to the dashboard")
                app.run_command_line(f"logs ad {ad_id}")  # the ad's story, from every log of the stack
                story = await until(pilot, lambda: isinstance(app.screen, LogScreen) and app.screen,
                                    what="the story screen")
                assert isinstance(story, LogScreen)
                await until(pilot, lambda: fault in story.text(), what="the ad's fault line in its story")
                assert all(ad_id in x for x in story.text().splitlines())
                assert f"[worker-{wid}]" in story.text()

        asyncio.run(scenario())
    finally:
        worker.stop()
        wait_for(lambda: not worker.alive(), timeout=15, what="the worker to stop")


def test_the_logs_command_line_takes_a_node_or_an_ad_and_nothing_else() -> None:
    from gamead_cli.tui import commands

    assert commands.parse(":logs local-1").args == {"worker": "local-1"}
    ad_id = "01" + "b" * 24
    assert commands.parse(f"logs ad {ad_id}").args == {"ad_id": ad_id}
    for bad in ("logs", "logs ../x", "logs ad nope", "logs a b c"):
        with pytest.raises(commands.CommandError):
            commands.parse(bad)
    assert commands.complete("logs l", workers=["local-3"]) == "logs local-3"


def test_a_tick_while_a_read_is_on_its_way_back_loses_no_line(tmp_path: Path) -> None:
    """tui54: at load the log screen stopped following (test_the_log_screen_follows_… above timed out at 20 s
    waiting for the fault line). Each tick of the screen started a read that cancelled the one in flight
    (``exclusive``); a thread cannot be cancelled, so the cancelled read had taken its lines from the file and they
    were dropped: once a read and its way back to the event loop took longer than a tick, no line ever showed. Here
    the loop is held (a loaded machine's starved loop) until the first read has returned, then a tick comes
    before that read's answer is handled. Without the fix the file's lines never show; with it, they do, once."""
    import threading
    import time

    from textual.worker import WorkerState

    log = tmp_path / "worker-1.log"
    log.write_text("".join(line(n) for n in range(3)))
    returned = threading.Event()  # the first read's thread has taken the file's lines and returned them

    class Told(LogFollower):
        def read(self) -> list[str]:
            try:
                return super().read()
            finally:
                returned.set()

    async def scenario() -> None:
        app = DashboardApp(ApiSource(ApiClient("http://127.0.0.1:9", timeout=0.5)), refresh=3600)
        async with app.run_test(size=(120, 40)) as pilot:
            screen = LogScreen(Told(tmp_path, worker="worker-1"), every=3600)  # no tick but the test's
            app.push_screen(screen)

            def reading() -> bool:
                return any(w.group == "log-tail" and w.state == WorkerState.RUNNING for w in screen.workers)

            deadline = time.monotonic() + 10
            while not screen.follower.tails:  # one turn of the loop per look: a pause would let the read come back
                assert time.monotonic() < deadline, "the first read never started"
                await asyncio.sleep(0)
            # the first read's thread has begun reading the file (its tail is made there); the loop is held (a
            # loaded machine's starved loop) until that read has returned: its answer not handled yet
            assert returned.wait(DEADLINE), "the first read never returned"
            screen.follow()  # the screen's next tick
            await until(pilot, lambda: screen.reads >= 1 and not reading(), what="the reads done")
            await until(pilot, lambda: "line 2" in screen.text(), what="the file's last line")
            assert [x.split()[-1] for x in screen.text().splitlines()] == ["0", "1", "2"], screen.text()

    asyncio.run(scenario())
