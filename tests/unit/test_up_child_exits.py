"""``gamead up``'s supervisor learns of a child's end from the kernel (idle56): a pidfd per running child read by
the event loop (gamead_core.child_exits), and looks again only when a restart is due, where it looked at every child
every 0.2 s (issue 14 item 1). A dead child is still restarted, a refused one still ends the loop, with the pidfd
and in the fallback (no ``pidfd_open``: every 0.2 s). Real processes (``sleep``), killed by the PID the test holds.
Their logs stay empty: with inotify (gamead_core.log_growth) only a child's end wakes the loop."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from gamead_cli.commands.up_supervise import keep_children
from gamead_core.child_exits import ChildExits
from gamead_core.supervisor import Supervisor
from tests.waits import until

SLEEP = shutil.which("sleep") or "/bin/sleep"


def _writes_once(go: Path) -> list[str]:
    """A child that writes 5000 bytes to its log once file ``go`` is made, then sleeps."""
    return ["sh", "-c", f"while [ ! -e {go} ]; do sleep 0.05; done; head -c 5000 /dev/zero; exec {SLEEP} 60"]


async def _stopped(stop: asyncio.Event, keeping: asyncio.Future[list[object]], exits: ChildExits) -> None:
    """Stop the watch ``keeping`` runs: it ends with no refused child."""
    stop.set()
    assert await asyncio.wait_for(keeping, 20) == []
    exits.close()


def _run(sup: Supervisor, run: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """``run()`` in an event loop of its own; then every child of ``sup`` stopped (by the PIDs it holds)."""
    try:
        asyncio.run(run())
    finally:
        sup.stop_all(5)


def _supervisor(said: list[str]) -> Supervisor:
    return Supervisor(on_event=said.append, restart_backoff=(0.05, 0.1), refusal_codes=frozenset({5}))


@pytest.mark.parametrize("fallback", [False, True], ids=["pidfd", "fallback"])
def test_a_killed_child_is_restarted_and_a_stop_ends_the_watch(tmp_path: Path, fallback: bool) -> None:
    said: list[str] = []
    sup = _supervisor(said)

    async def run() -> list[object]:
        exits, stop = ChildExits(), asyncio.Event()
        exits.fallback = exits.fallback or fallback
        child = sup.start("worker-1", [SLEEP, "60"], dict(os.environ), tmp_path / "worker-1.log")
        first = child.pid
        assert first is not None
        keeping = asyncio.ensure_future(keep_children(sup, sup.poll, stop, exits))
        await until(lambda: exits.fallback or exits._fds, what="the child watched", timeout=20.0)
        os.kill(first, signal.SIGKILL)
        await until(lambda: child.pid != first and child.alive, what="its restart", timeout=20.0)
        second = child.pid
        assert second is not None
        os.kill(second, signal.SIGKILL)  # the restarted process is watched too
        await until(lambda: child.pid not in (first, second) and child.alive, what="its second restart",
                    timeout=20.0)
        stop.set()
        refused = await asyncio.wait_for(keeping, 20)
        exits.close()
        return refused

    try:
        assert asyncio.run(run()) == []
    finally:
        sup.stop_all(5)
    assert sum("killed by SIGKILL" in line or "restarting " in line for line in said) == 2, said
    assert ChildExits().fallback is (not hasattr(os, "pidfd_open"))


def test_a_child_refused_at_its_start_ends_the_watch_with_it(tmp_path: Path) -> None:
    sup = _supervisor([])

    async def run() -> list[object]:
        exits = ChildExits()
        go = tmp_path / "go"  # the child exits 5 (refused) once the test made this file
        sup.start("api", ["sh", "-c", f"while [ ! -e {go} ]; do sleep 0.05; done; exit 5"], dict(os.environ),
                  tmp_path / "api.log")
        keeping = asyncio.ensure_future(keep_children(sup, sup.poll, asyncio.Event(), exits))
        await until(lambda: bool(exits._fds), what="the child watched", timeout=20.0)
        go.touch()
        refused = await asyncio.wait_for(keeping, 20)
        exits.close()
        return refused

    try:
        refused = asyncio.run(run())
    finally:
        sup.stop_all(5)
    assert [c.name for c in refused] == ["api"]  # type: ignore[attr-defined]


@pytest.mark.parametrize("inotify", [True, False], ids=["inotify", "fallback"])
def test_a_log_grown_past_its_bound_is_rotated_with_nothing_else_to_wake_the_loop(
        tmp_path: Path, inotify: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if not inotify:
        monkeypatch.setattr("gamead_core.log_growth.libc_function", lambda name: None)
    sup = Supervisor(log_limit=1000)
    go, path = tmp_path / "go", tmp_path / "worker-1.log"  # the child writes 5000 bytes once this file is made

    async def run() -> None:
        exits, stop = ChildExits(), asyncio.Event()
        sup.start("worker-1", _writes_once(go), dict(os.environ), path)
        keeping = asyncio.ensure_future(keep_children(sup, sup.poll, stop, exits))
        await until(lambda: sup.logs_checked_at > 0 and bool(exits._fds), what="the first look", timeout=20.0)
        go.touch()
        older = path.with_name(path.name + ".1")
        await until(lambda: older.exists() and older.stat().st_size == 5000, what="the log copied to worker-1.log.1",
                    timeout=20.0)
        await _stopped(stop, keeping, exits)

    _run(sup, run)
    assert path.stat().st_size == 0


@pytest.mark.parametrize("how", ["deleted", "replaced"])
def test_a_log_in_a_log_directory_deleted_or_replaced_while_up_runs_is_still_bound(tmp_path: Path, how: str) -> None:
    """``rm -r .gamead/logs`` or ``mv logs logs.old && mkdir logs`` while up runs: the watch went with the old
    directory, and the log of a child restarted in the new one grew past its bound untold (attack56b F1)."""
    sup = Supervisor(log_limit=1000, restart_backoff=(0.05, 0.1))
    logs, go = tmp_path / "logs", tmp_path / "go"  # the child writes 5000 bytes once this file is made
    path = logs / "worker-1.log"

    async def run() -> None:
        exits, stop = ChildExits(), asyncio.Event()
        child = sup.start("worker-1", _writes_once(go), dict(os.environ), path)
        keeping = asyncio.ensure_future(keep_children(sup, sup.poll, stop, exits))
        await until(lambda: sup.logs_checked_at > 0 and bool(exits._fds), what="the first look", timeout=20.0)
        if how == "deleted":
            shutil.rmtree(logs)
        else:
            logs.rename(tmp_path / "logs.old")
            logs.mkdir()
        first = child.pid
        assert first is not None
        os.kill(first, signal.SIGKILL)  # its restart writes its log in the new directory
        await until(lambda: child.pid != first and child.alive, what="its restart", timeout=20.0)
        await until(lambda: sup.logs_checked_at > child.started_at, what="a look after its restart", timeout=20.0)
        go.touch()  # after that look: only a watch of the new directory tells of this growth
        older = path.with_name(path.name + ".1")
        await until(lambda: older.exists() and path.stat().st_size <= 1000, what="the new log copied and emptied",
                    timeout=20.0)
        await _stopped(stop, keeping, exits)

    _run(sup, run)
