"""review45: a heartbeat answered late never wins the key over the process that claimed it meanwhile, on a real
nats-server.

A worker whose registry writes stop landing for longer than a start's watch (NATS slow for it, its link stalled)
is taken for dead by a start under its id (:mod:`gamead_core.registry.claim`), which claims the key and runs. Its
beat, read-checked before it was sent (:mod:`gamead_core.registry.owner`) but landing after that claim, wrote over
the new process's entry: the new, healthy process's next beat found the old one's entry and it ended, exit 5,
saying it "wrote no heartbeat (frozen or paused …)", while the late one kept the id. An acknowledged put is now a
compare-and-set on the write it read: the late beat is refused, and the old process's next beat finds the key the
new one's and it ends (as a frozen one does).

The lateness is made by holding the old worker's registry writes (:class:`tests.nats_filter.PublishFilter`) 6 s,
past its 1 s request timeout and the new one's 3 s watch."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from gamead_core import names
from gamead_core.embedded import EmbeddedNats
from gamead_core.registry.nodes import node_key
from tests.nats_filter import PublishFilter
from tests.support import Proc, clean_env, gamead_argv, start_worker, wait_for

ENV = {"GAMEAD_REGISTRY__HEARTBEAT_INTERVAL": "2", "GAMEAD_REGISTRY__TTL": "10", "GAMEAD_NATS__REQUEST_TIMEOUT": "1"}
HOLD = 6.0


def test_a_late_beat_of_the_old_process_does_not_end_the_new_one(
        fresh_nats: Callable[[], EmbeddedNats], links: list[PublishFilter], procs: list[Proc],
        tmp_path: Path) -> None:
    """Old ``fixed`` (through the proxy) with its registry writes held 6 s; new ``fixed`` (direct) started then.
    Figures once one of them ended (new one alive, old one's exit code, new one's lines saying its id was taken
    over): with the fix (True, 5, 0); without (False, None, 2): the new one ended exit 5, the late one ran on."""
    server = fresh_nats()
    proxy = PublishFilter(("127.0.0.1", server.port)).start()
    links.append(proxy)
    old = start_worker(proxy.url, tmp_path / "old", worker_id="fixed", ready=True, **ENV)
    procs.append(old)
    proxy.hold(f"{names.kv_prefix(names.REGISTRY_BUCKET)}{node_key('fixed')}", HOLD)
    new = Proc("fixed-new", gamead_argv("worker", "--id", "fixed", "-n", "1"),
               clean_env(GAMEAD_NATS__URL=server.url, **ENV), tmp_path / "fixed-new.log").start()
    procs.append(new)
    wait_for(lambda: not new.alive() or not old.alive(), timeout=40, what="the old or the new fixed to end")
    code = old.popen.poll() if old.popen is not None else None
    said = new.output().count("was taken over by another process")
    assert (new.alive(), code, said) == (True, 5, 0), f"{new.output()[-2500:]}\nOLD {old.output()[-2500:]}"
