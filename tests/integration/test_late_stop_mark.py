"""review45: a clean stop's delete mark that lands late never deletes the entry of the id's next process, on a real
nats-server.

A worker's clean stop deletes its registry entry (the mark) and retries it until it lands within the stop's last
writes (:class:`gamead_core.registry.stop_writes.CleanStop`). The mark was an unconditional delete of the key: one
whose answer was late (NATS slow, a registry write held on its way) landed after the id's next process (a pod with a
fixed ``--id``, a restart) had claimed the key and written its entry, or a retry of it did, and deleted that live
process's entry: ``gamead workers`` lost it, every reaper read the gap as its death (a mark of another process is not
its clean stop) and recovered what it held, charging its running ad, and its next beat said its entry was "deleted
by another process". The mark is now a compare-and-set on the key's last write, read just before, when that write
is this process's entry or a mark (another process's entry there: nothing to delete).

The late answer is made by holding the stopping worker's registry writes on their way to nats-server
(:class:`tests.nats_filter.PublishFilter`) longer than its ``nats.request_timeout``."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gamead_core import names
from gamead_core.embedded import EmbeddedNats
from gamead_core.registry.nodes import node_key
from gamead_core.registry.wire import NodeInfo
from tests.nats_filter import PublishFilter
from tests.support import Proc, clean_env, gamead_argv, on_js, start_worker, wait_for, wait_worker_ready

ENV = {"GAMEAD_REGISTRY__HEARTBEAT_INTERVAL": "2", "GAMEAD_REGISTRY__TTL": "10", "GAMEAD_NATS__REQUEST_TIMEOUT": "1"}
#: seconds the stopping worker's registry writes wait in the proxy: past its 1 s request timeout and the next
#: process's 3 s watch of its entry
HOLD = 4.0
GONE = "was gone when it came to write it again"


def _entry(url: str, worker_id: str) -> tuple[int, str] | None:
    """``(pid, heartbeatAt)`` of ``worker_id``'s registry entry now, None when it has none."""
    async def read(js: Any) -> tuple[int, str] | None:
        kv = await js.key_value(names.REGISTRY_BUCKET)
        try:
            entry = await kv.get(node_key(worker_id))
        except Exception:  # noqa: BLE001 - deleted or expired: no entry
            return None
        info = NodeInfo.model_validate_json(entry.value) if entry.value else None
        return None if info is None else (info.pid, info.heartbeat_at.isoformat())

    return on_js(url, read)  # type: ignore[no-any-return]


def test_a_late_stop_mark_leaves_the_next_process_entry(fresh_nats: Callable[[], EmbeddedNats],
                                                        links: list[PublishFilter], procs: list[Proc],
                                                        tmp_path: Path) -> None:
    """Old ``fixed`` (through the proxy) SIGTERMed just after a beat with its registry writes held 4 s (and, the
    proxy relaying one byte stream, everything it sent after them); new ``fixed`` (direct) started at once: its watch
    (3 s) ends before the old one's mark lands, and it claims the key. Once the old one has ended, the new one's
    entry is read until it has beaten 3 times more. Figures (its entry there at every read, its lines saying its
    entry was gone): with the fix (True, 0); without (False, 7): the old one's mark and its retries, each held 4 s,
    landed one after another over the new one's entry, which its next beat wrote again each time."""
    server = fresh_nats()
    proxy = PublishFilter(("127.0.0.1", server.port)).start()
    links.append(proxy)
    old = start_worker(proxy.url, tmp_path / "old", worker_id="fixed", ready=True,
                       **{**ENV, "GAMEAD_REGISTRY__HEARTBEAT_INTERVAL": "5"})
    procs.append(old)
    # its stop right after a beat, 5 s before the next: only the stop's mark is held (a beat held past the new
    # process's claim would land over its entry, as a frozen process's: that one ends, :mod:`.registry.owner`)
    first = wait_for(lambda: _entry(server.url, "fixed"), timeout=10, what="the old fixed's entry")
    wait_for(lambda: (e := _entry(server.url, "fixed")) is not None and e != first, timeout=15, interval=0.02,
             what="a beat of the old fixed")
    proxy.hold(f"{names.kv_prefix(names.REGISTRY_BUCKET)}{node_key('fixed')}", HOLD)
    old.signal(signal.SIGTERM)
    new = Proc("fixed-new", gamead_argv("worker", "--id", "fixed", "-n", "1"), clean_env(GAMEAD_NATS__URL=server.url,
                                                                                          **ENV),
               tmp_path / "fixed-new.log").start()
    procs.append(new)
    wait_worker_ready(new, timeout=30)
    wait_for(lambda: not old.alive(), timeout=30, what="the old fixed to end")
    seen: list[tuple[int, str] | None] = []

    def three_beats() -> bool:  # of the new process, seen after the old one ended (its held writes landed or not)
        seen.append(_entry(server.url, "fixed"))
        return len({e[1] for e in seen if e is not None and e[0] == new.pid}) >= 4

    try:
        wait_for(three_beats, timeout=30, what="three heartbeats of the new fixed")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{seen[-3:]}\n{new.output()[-3000:]}\n{old.output()[-3000:]}") from None
    assert (None not in seen, new.output().count(GONE)) == (True, 0), (
        f"{seen}\n{new.output()[-2500:]}\nOLD {old.output()[-2500:]}")
