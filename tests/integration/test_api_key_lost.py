"""claim45 1: an API node (``gamead serve``) whose registry key is deleted, expires or is written by another
process while it runs, on a real nats-server.

An API is stateless: a key deleted under it (by hand, by a tool) or expired (the process SIGSTOPped past
``registry.ttl``: the reapers took it for dead meanwhile) is written again at its next beat, and now said, one JSON
line with its id, so the gap ``gamead workers`` showed is explained. A key holding another process's entry (an id is
``api-<host>-<pid>-<random>``: a copy of this process, or an entry written by hand) stops its writes
(:mod:`gamead_core.registry.owner`) and now the node itself: before, it served on with no registry entry of its own,
out of ``gamead workers`` and the doctor's view, its autoscaler holding the lease under an id another process
keeps alive; now it stops serving and exits 5 with one line, its key left to the other."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from gamead_core import names
from gamead_core.embedded import EmbeddedNats
from gamead_core.registry.nodes import node_key
from gamead_core.registry.wire import NodeInfo
from tests.support import Proc, frozen, on_js, start_api, wait_for

ENV = {"GAMEAD_REGISTRY__HEARTBEAT_INTERVAL": "1", "GAMEAD_REGISTRY__TTL": "3"}
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
#: what the line of a re-announced entry says
AGAIN = "announcing it again"


def _entries(url: str) -> dict[str, NodeInfo]:
    """Every live registry entry, by node id."""
    async def read(js: Any) -> dict[str, NodeInfo]:
        kv = await js.key_value(names.REGISTRY_BUCKET)
        try:
            keys = await kv.keys()
        except Exception:  # noqa: BLE001 - no keys at all
            return {}
        out = {}
        for key in keys:
            try:
                entry = await kv.get(key)
            except Exception:  # noqa: BLE001 - deleted or expired meanwhile
                continue
            if entry.value:
                info = NodeInfo.model_validate_json(entry.value)
                out[info.id] = info
        return out

    return on_js(url, read)  # type: ignore[no-any-return]


def _api_entry(url: str, pid: int) -> NodeInfo | None:
    return next((n for n in _entries(url).values() if n.role == "api" and n.pid == pid), None)


def _on_key(url: str, node_id: str, value: bytes | None) -> None:
    """Delete ``node_id``'s key (``value`` None) or write ``value`` there, as another process would."""
    async def act(js: Any) -> None:
        kv = await js.key_value(names.REGISTRY_BUCKET)
        await (kv.delete(node_key(node_id)) if value is None else kv.put(node_key(node_id), value))

    on_js(url, act)


def _said_again(api: Proc, node_id: str) -> int:
    """The API's JSON log lines saying its entry was gone and is announced again, with its id."""
    count = 0
    for line in api.output().splitlines():
        if AGAIN in line and line.startswith("{"):
            count += json.loads(line).get("node_id") == node_id
    return count


def test_an_api_whose_key_is_deleted_or_expires_announces_itself_again_and_says_so(
        fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path) -> None:
    """The API's key deleted by another process, then expired while the API was SIGSTOPped past ``registry.ttl``
    (3 s). Figures (entry back after the delete, after the freeze, lines saying so with its id): with the fix
    (True, True, 2); without (True, True, 0): it was written again at the next beat, silently."""
    url = fresh_nats().url
    api, _ = start_api(url, tmp_path, **ENV)
    procs.append(api)
    node = wait_for(lambda: _api_entry(url, api.pid), timeout=20, what="the API's registry entry")
    _on_key(url, node.id, None)
    back = wait_for(lambda: _api_entry(url, api.pid), timeout=20, what="the API's entry written again") is not None
    with frozen(api.pid):
        wait_for(lambda: _api_entry(url, api.pid) is None, timeout=20, what="the frozen API's entry to expire")
    thawed = wait_for(lambda: _api_entry(url, api.pid), timeout=20, what="the thawed API's entry") is not None
    try:
        wait_for(lambda: _said_again(api, node.id) >= 2, timeout=10, what="two lines saying so")
    except AssertionError:
        pass
    assert (back, thawed, _said_again(api, node.id)) == (True, True, 2), api.output()[-3000:]
    assert api.alive()


def test_an_api_whose_key_another_process_writes_stops_serving_and_exits_5(
        fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path) -> None:
    """Another process's entry (same id, another pid and start) written into the API's key. Figures (exited, code,
    no entry of the API's own written since): with the fix (True, 5, True), one line naming the other's pid;
    without (False, None, True): it served on for the 20 s waited with no entry of its own (out of ``gamead
    workers``; the other's entry, never renewed, expired after ``registry.ttl``)."""
    url = fresh_nats().url
    api, _ = start_api(url, tmp_path, **ENV)
    procs.append(api)
    node = wait_for(lambda: _api_entry(url, api.pid), timeout=20, what="the API's registry entry")
    other = node.model_copy(update={"pid": node.pid + 100000, "started_at": datetime.now(timezone.utc)})
    _on_key(url, node.id, other.model_dump_json().encode())
    try:
        wait_for(lambda: not api.alive(), timeout=20, what="the API to end")
    except AssertionError:
        pass
    code = api.popen.poll() if api.popen is not None else None
    assert (not api.alive(), code, _api_entry(url, api.pid) is None) == (True, 5, True), api.output()[-3000:]
    lines = [ln for ln in _ANSI.sub("", api.output()).splitlines() if ln.startswith("error: ")]
    assert len(lines) == 1 and "Traceback" not in api.output(), api.output()[-2000:]
    assert f"the id {node.id} was taken over by another process" in lines[0], lines[0]
    assert f"pid {other.pid}" in lines[0] and "stops serving" in lines[0], lines[0]
