"""review45: a start that watches a live holder's entry while that holder stops cleanly, on a real nats-server.

A pod with a fixed ``--id`` rolled by a Deployment (the new pod starts before the old one is told to stop), or a
restart typed while the old process drains: the start reads the old process's entry and watches it; the old one
stops cleanly (hands its ads back, deletes its entry: the delete mark) within the watch. Since claim45 the claim
passed the entry it had read at the watch's start to the start-up as the dead predecessor's
(:class:`gamead_core.registry.claim.Claimed`), and the start "adopted" it: ``adopting what the previous worker …
held`` and a recovery line saying the worker died, its held ads handed back a second time, though it stopped
cleanly. Before claim45 the start-up read the key again (the delete mark: nothing to adopt), as the reaper asks
:meth:`~gamead_core.registry.kv.Registry.stopped` before it takes a vanished entry for a death."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from gamead_core.embedded import EmbeddedNats
from tests.support import Proc, clean_env, gamead_argv, start_worker, wait_for, wait_worker_ready

#: the old process beats every 10 s, so its stop (within a second or two of the start's watch beginning) comes
#: before its next beat, and the start's watch (10 s + 1 s) sees the delete mark, not a renewal
SLOW = {"GAMEAD_REGISTRY__HEARTBEAT_INTERVAL": "10", "GAMEAD_REGISTRY__TTL": "30"}


def test_a_holder_stopping_cleanly_during_the_watch_is_not_adopted(
        fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path) -> None:
    """Old ``roll`` running, new ``roll`` started, old one SIGTERMed once the new one watches its entry. Figures
    (new one started, old one's exit code, "adopting" lines, lines saying ``roll`` died): with the fix
    (True, 0, 0, 0); without (True, 0, 1, 1)."""
    url = fresh_nats().url
    old = start_worker(url, tmp_path, worker_id="roll", ready=True, **SLOW)
    procs.append(old)
    new = Proc("roll-new", gamead_argv("worker", "--id", "roll", "-n", "1"), clean_env(GAMEAD_NATS__URL=url, **SLOW),
               tmp_path / "roll-new.log").start()
    procs.append(new)
    wait_for(lambda: "watching it up to" in new.output() or not new.alive(), timeout=30,
             what="the new roll to watch the old one's entry")
    code = old.stop(timeout=20)
    wait_worker_ready(new, timeout=30)
    out = new.output()
    adopting = out.count("adopting what the previous worker")
    died = sum(1 for line in out.splitlines() if "worker roll" in line and " died" in line)
    assert (new.alive(), code, adopting, died) == (True, 0, 0, 0), out[-3000:]
