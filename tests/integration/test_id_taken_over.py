"""attack44c F1, F2: the id claim after a start, on a real nats-server.

F1: a worker frozen (SIGSTOP) past a successor's watch, then resumed, wrote its key beside the successor's for ever;
now its next write finds the key another process's and it ends, exit 5, one line, its key left to the successor.
F2: a restart that ``gamead up`` makes after reaping its worker (``--after-pid``) takes the id over at once, not after
the watch (21 s with a 20 s heartbeat)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gamead_core import names
from gamead_core.embedded import EmbeddedNats
from gamead_core.registry.nodes import node_key
from gamead_core.registry.wire import NodeInfo
from tests.support import Proc, frozen, on_js, start_worker, wait_for, wait_worker_ready

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _holder_pid(url: str, node_id: str) -> int | None:
    """The pid in ``node_id``'s registry entry (None: no entry, or a delete mark)."""
    async def read(js: Any) -> int | None:
        try:
            entry = await (await js.key_value(names.REGISTRY_BUCKET)).get(node_key(node_id))
        except Exception:  # noqa: BLE001 - deleted or none
            return None
        return NodeInfo.model_validate_json(entry.value).pid if entry.value else None

    return on_js(url, read)  # type: ignore[no-any-return]


def test_a_holder_frozen_past_the_watch_ends_when_it_thaws(
        fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path) -> None:
    """attack44c F1: ``dup`` SIGSTOPped, a second ``--id dup`` took it over after its 3 s watch, and the first, resumed,
    beat the key too for ever (views alternated pids, reapers said "died"). Now the first's next write reads the key,
    finds the second's entry, writes nothing more and ends: exit 5, one line naming the second; the entry stays the
    second's (no delete mark of the first). Figures (exited, code, holder is the second): with the fix
    (True, 5, True); without (False, None, True) (it ran on for the 20 s waited, beating the key beside the second)."""
    url = fresh_nats().url
    first = start_worker(url, tmp_path, worker_id="dup", ready=True)
    procs.append(first)
    with frozen(first.pid):
        second = start_worker(url, tmp_path / "second", worker_id="dup")
        procs.append(second)
        wait_worker_ready(second, timeout=30)
        assert "it is dead, its id taken over" in second.output(), second.output()[-2000:]
    try:
        wait_for(lambda: not first.alive(), timeout=20, what="the thawed first dup to end")
    except AssertionError:
        pass
    holder = _holder_pid(url, "dup")
    code = first.popen.poll() if first.popen is not None else None
    assert (not first.alive(), code, holder == second.pid) == (True, 5, True), first.output()[-3000:]
    lines = [ln for ln in _ANSI.sub("", first.output()).splitlines() if ln.startswith("error: ")]
    assert len(lines) == 1 and "Traceback" not in first.output(), first.output()[-2000:]
    assert "the id dup was taken over by another process" in lines[0] and f"pid {second.pid}" in lines[0], lines[0]
    assert second.alive()


def test_a_restart_gamead_up_made_after_reaping_takes_the_id_over_at_once(
        fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path) -> None:
    """attack44c F2: ``gamead up`` restarting its SIGKILLed worker waited out the claim's watch (21 s with
    ``registry.heartbeat_interval`` 20), silent. It passes the reaped pid (``--after-pid``): the restart takes that
    entry over at once, no watch. Without the fix the flag does not exist (exit 2, "No such option")."""
    url = fresh_nats().url
    slow = {"GAMEAD_REGISTRY__HEARTBEAT_INTERVAL": "20", "GAMEAD_REGISTRY__TTL": "60"}
    first = start_worker(url, tmp_path, worker_id="local-1", ready=True, **slow)
    procs.append(first)
    dead = first.pid
    first.kill()
    wait_for(lambda: _holder_pid(url, "local-1") == dead, timeout=5, what="the dead worker's entry")
    again = Proc("again", [*first.argv, "--after-pid", str(dead)], first.env, tmp_path / "again.log").start()
    procs.append(again)
    wait_worker_ready(again, timeout=15)
    out = again.output()
    assert f"its entry is of process {dead}, which gamead up saw end: taken over at once" in out, out[-2000:]
    assert "watching it up to" not in out
