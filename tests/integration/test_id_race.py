"""claim45 2: two ``gamead worker --id W`` started at once, on a real nats-server: only one may start.

The claim read the key and the first heartbeat wrote it apart: two starts whose reads both came before either's
write both found the key free, both started and pulled, each read the other's entry as a predecessor's (``adopting
what the previous worker … held``) and every reaper read their writes as deaths, until the one whose beat came
first after the other's write ended (exit 5) — a worker beating every 10 s beside one beating every second ran up
to 10 s so. The claim is now the key's write itself, a compare-and-set on the last write it read
(:mod:`gamead_core.registry.claim`): of two such starts one writes, the other's write is refused and it ends at once,
exit 5, before it pulls anything.

The window (a read, then a write a few ms later) is widened for the test by holding the workers' registry writes
on their way to nats-server (:class:`tests.nats_filter.PublishFilter`): both reads then come before either write
however the two start-ups fall, where two bare starts hit it only by chance."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from gamead_core import names
from gamead_core.embedded import EmbeddedNats
from gamead_core.registry.nodes import node_key
from tests.nats_filter import PublishFilter
from tests.support import Proc, clean_env, gamead_argv, wait_for

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
#: seconds each registry write waits in the proxy: longer than two forked start-ups lie apart on a loaded machine
HOLD = 1.5


def _started(proc: Proc) -> bool:
    return '"worker started"' in proc.output()


def test_two_workers_started_at_once_under_one_id_one_starts_the_other_is_refused(
        fresh_nats: Callable[[], EmbeddedNats], links: list[PublishFilter], procs: list[Proc],
        tmp_path: Path) -> None:
    """Two workers ``race-k``, one beating every 1 s, one every 10 s, started together three times (a fresh id
    each round). Figures (rounds where both logged "worker started", rounds with exactly one exit 5 whose line says
    the id is held, "adopting" lines): with the fix (0, 3, 0); without (3, 0, 0): both started and pulled every
    round, the loser ending only at a beat that found the other's entry (`was taken over … while this one wrote no
    heartbeat (frozen or paused …)`, a wrong reason), up to the 10 s beat's interval later."""
    server = fresh_nats()
    proxy = PublishFilter(("127.0.0.1", server.port)).start()
    links.append(proxy)
    both = refused = adopting = 0
    for k in range(3):
        worker_id = f"race-{k}"
        proxy.hold(f"{names.kv_prefix(names.REGISTRY_BUCKET)}{node_key(worker_id)}", HOLD)
        pair = [Proc(f"{worker_id}-{i}", gamead_argv("worker", "--id", worker_id, "-n", "1"),
                     clean_env(GAMEAD_NATS__URL=proxy.url, GAMEAD_NATS__REQUEST_TIMEOUT="5",
                               GAMEAD_REGISTRY__HEARTBEAT_INTERVAL=beat, GAMEAD_REGISTRY__TTL="30"),
                     tmp_path / f"{worker_id}-{i}.log") for i, beat in enumerate(("1", "10"))]
        for proc in pair:
            procs.append(proc.start())
        wait_for(lambda: any(map(_started, pair)) and (all(map(_started, pair)) or not all(p.alive() for p in pair)),
                 timeout=60, what=f"the {worker_id} pair to start or one of them to end")
        try:  # the other one, if it started too, ends at a beat: wait for that before the next round
            wait_for(lambda: not all(p.alive() for p in pair), timeout=30, what=f"one {worker_id} to end")
        except AssertionError:
            pass
        both += all(map(_started, pair))
        ended = [p for p in pair if not p.alive()]
        lines = [ln for p in ended for ln in _ANSI.sub("", p.output()).splitlines() if ln.startswith("error: ")]
        refused += (len(ended) == 1 and ended[0].popen is not None and ended[0].popen.poll() == 5 and len(lines) == 1
                    and f"the id {worker_id} is held by a live process" in lines[0])
        adopting += sum("adopting what the previous worker" in p.output() for p in pair)
        for proc in pair:
            proc.stop(timeout=10)
    assert (both, refused, adopting) == (0, 3, 0), "\n".join(p.output()[-1500:] for p in procs[-2:])
