"""attack44 F1, F3: no two live processes under one registry key, on a real nats-server.

A second ``gamead worker --id W`` beside a live ``W`` is refused at its start (one line naming the holder, exit 5:
:mod:`gamead_core.registry.claim`), so the first one's peers never read its beats as a death; a restart after a
kill -9 of ``W`` takes the id over within the holder's heartbeat interval + ``WATCH_MARGIN``; ``gamead up``'s
worker ids on a shared NATS carry their stack's tag, and an API's id a random part."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from gamead_core.embedded import EmbeddedNats
from gamead_core.ids import is_worker_id
from gamead_core.jobs.policy import runner_node
from gamead_core.metrics_ports import WorkerMetricsPorts
from gamead_core.registry import new_api_node_id
from gamead_core.registry.wire import NODE_ID_PATTERN
from gamead_core.scaling.local_ids import local_index, stack_tag, worker_id_of
from tests.support import Proc, clean_env, gamead_argv, reaper_rounds, start_worker, wait_for, wait_worker_ready

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _deaths(worker_id: str, *procs: Proc) -> int:
    """Lines of ``procs``' logs that say ``worker_id`` died or adopt what it held: what a peer said of a second
    process writing its key (attack44 F1: once a beat, each charging the running ad an attempt)."""
    said = (f"worker {worker_id} died", f"worker {worker_id} stopped answering", "adopting what the previous worker")
    return sum(line.count(s) for p in procs for line in p.output().splitlines() for s in said)


def test_a_second_worker_under_a_live_id_is_refused_and_nobody_is_said_dead(
        fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path) -> None:
    """attack44 F1: ``gamead worker --id local-1`` beside a live ``local-1`` was accepted (only the id's syntax was
    checked); the two wrote one registry key in turn and the reaper logged ``worker local-1 died holding …: the one
    running was charged an attempt`` every beat. Now the second start is refused: exit 5 and one line naming the
    holder's host and pid, and a peer's reaper says no death. Figures (exited, code, deaths said): with the fix
    (True, 5, 0); without (False, None, 23) (it ran on: 23 lines of local-1 "died" or "adopting" in 3 reaper rounds)."""
    url = fresh_nats().url
    first = start_worker(url, tmp_path, worker_id="local-1", ready=True)
    peer = start_worker(url, tmp_path, worker_id="peer", ready=True)  # whose reaper would see a death
    procs.extend([first, peer])
    second = Proc("second", gamead_argv("worker", "--id", "local-1", "-n", "1"), clean_env(GAMEAD_NATS__URL=url),
                  tmp_path / "second.log").start()
    procs.append(second)
    try:
        wait_for(lambda: not second.alive(), timeout=20, what="the second local-1 to end")
    except AssertionError:
        pass
    reaper_rounds(url, 3)
    exited = not second.alive()
    code = second.popen.poll() if second.popen is not None else None
    assert (exited, code, _deaths("local-1", first, peer, second)) == (True, 5, 0), second.output()[-2000:]
    lines = [ln for ln in _ANSI.sub("", second.output()).splitlines() if ln.startswith("error: ")]
    assert len(lines) == 1 and "Traceback" not in second.output(), second.output()[-2000:]
    assert "the id local-1 is held by a live process" in lines[0] and f"pid {first.pid}" in lines[0], lines[0]
    assert "heartbeat" in lines[0] and "choose another --id" in lines[0], lines[0]
    assert first.alive() and peer.alive()


def test_a_restart_after_kill_9_takes_the_id_over(fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc],
                                                 tmp_path: Path) -> None:
    """attack44 F1's other side: the refusal must not refuse a restart of the same id after a kill -9 (a systemd
    unit or a pod with a fixed ``--id``), whose entry lives on for ``registry.ttl``: the restart watches it for the
    dead holder's heartbeat interval (2 s) + WATCH_MARGIN (1 s), sees no beat, and starts (its log says the id was
    taken over); the reaper then handles the dead one as before."""
    url = fresh_nats().url
    first = start_worker(url, tmp_path, worker_id="fixed", ready=True)
    procs.append(first)
    first.kill()
    again = start_worker(url, tmp_path / "again", worker_id="fixed")
    procs.append(again)
    wait_worker_ready(again, timeout=30)
    assert "was not renewed in 3.0 s: it is dead, its id taken over" in again.output(), again.output()[-2000:]
    assert "is held by a live process" not in again.output()


def test_two_up_stacks_on_one_nats_name_their_workers_apart(tmp_path: Path) -> None:
    """attack44 F3: two ``gamead up`` sharing one ``nats.url`` both named their first worker ``local-1`` (one key,
    each read as the other's death). A stack on a shared NATS tags its ids with a hash of host and data directory:
    distinct across stacks, the same over one stack's restarts; its metrics port and log file still follow ``k``."""
    a, b = stack_tag("vm", str(tmp_path / "a")), stack_tag("vm", str(tmp_path / "b"))
    ids = {worker_id_of("worker-1", a), worker_id_of("worker-1", b), worker_id_of("worker-1")}
    assert len(ids) == 3 and all(is_worker_id(i) for i in ids), ids
    assert stack_tag("vm", str(tmp_path / "a")) == a != stack_tag("other-host", str(tmp_path / "a"))
    assert [local_index(i) for i in sorted(ids)] == [1, 1, 1] and local_index("local-1-zz") is None
    assert WorkerMetricsPorts("127.0.0.1", 9100, enabled=True).planned(worker_id_of("worker-3", a)) == 9102


def test_two_api_ids_of_one_host_and_pid_differ() -> None:
    """attack44 F1 addendum 2: an API's id was ``api-<host>-<pid>``, so two ``gamead serve`` with one host name and
    one pid (containers sharing the host's name, each gamead PID 1) shared one registry key. It has a worker id's
    random part now: two ids made in one process differ (before: equal). A job runner's id is the API's less
    ``api-``; one of an older node still maps to its ``api-<host>-<pid>``."""
    one, two = new_api_node_id(), new_api_node_id()
    assert one != two and all(re.fullmatch(NODE_ID_PATTERN, i) for i in (one, two)), (one, two)
    assert runner_node("my-host-4242-abcdef") == "api-my-host-4242"
