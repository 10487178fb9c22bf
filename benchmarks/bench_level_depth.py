"""Client CPU of one queue-head read of a level (:func:`gamead_core.queue.depth.level_depth`), cpu60.

Run from the repository root; ``--code`` times another tree's ``level_depth`` in the same run, alternating::

    .venv/bin/python benchmarks/bench_level_depth.py                          # this tree, 5 rounds × 2,000 reads
    .venv/bin/python benchmarks/bench_level_depth.py --code /tmp/old-tree     # and an exported tree, alternating

A fresh ``nats-server`` with gamead's topology (``ensure_topology``), 20 of the README's sample ads published to
priority 3 as ``POST /ads`` publishes them. Each round reads the level ``--reads`` times (one ``CONSUMER.INFO``,
then one direct get of its next ad: the worker's, the API sampler's and ``/v1/levels``' read) in a child process
per tree, and prints the child's CPU per read (``time.process_time``, µs) and the ratio to the first tree.
Before the rounds, the parse alone: one real ``CONSUMER.INFO`` answer of that level parsed 20,000 times by nats-py
(``json.loads`` + ``ConsumerInfo.from_response``, what ``js.consumer_info`` does) and by
:func:`~gamead_core.queue.consumer_counts.counts_of`, alternating in 5 rounds in this process (µs per answer).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


async def _child(url: str, reads: int, publish: bool) -> float:
    import nats

    from gamead_core import names
    from gamead_core.config import GameadSettings
    from gamead_core.models import AdRecord, AdStatus, AdSubmission, utcnow
    from gamead_core.queue.depth import level_depth
    from gamead_core.queue.topology import ensure_topology
    from gamead_core.store.ads import encode
    from tests.support import SAMPLE_AD

    nc = await nats.connect(url)
    js = nc.jetstream()
    if publish:
        await ensure_topology(js, GameadSettings())
        ad = AdSubmission.model_validate({**SAMPLE_AD, "priority": 3})
        for n in range(20):
            ad_id = f"01jx00000000000000000000{n:02d}"
            rec = AdRecord(id=ad_id, status=AdStatus.QUEUED, priority=3, submitted_at=utcnow(), ad=ad)
            await js.publish(names.level_subject(3), encode(rec), headers={names.HDR_MSG_ID: ad_id,
                                                                            names.HDR_AD_ID: ad_id})
    if publish:
        answer = await nc.request(f"$JS.API.CONSUMER.INFO.{names.ADS_STREAM}.{names.level_consumer(3)}", b"")
        _parse_rounds(answer.data)
    for _ in range(100):  # warm-up
        await level_depth(js, 3, time.time())
    cpu = time.process_time()
    for _ in range(reads):
        depth = await level_depth(js, 3, time.time())
    per = (time.process_time() - cpu) / reads * 1e6
    assert depth.pending == 20 and depth.oldest_age is not None, depth
    await nc.close()
    return per


def _parse_rounds(data: bytes, count: int = 20_000) -> None:
    import json

    from nats.js.api import ConsumerInfo

    from gamead_core.queue.consumer_counts import counts_of

    def nats_py() -> None:
        ConsumerInfo.from_response(json.loads(data))

    def counts() -> None:
        counts_of(data)

    for r in range(5):
        per = {}
        for name, parse in (("nats-py", nats_py), ("counts_of", counts)) if r % 2 == 0 else (("counts_of", counts),
                                                                                             ("nats-py", nats_py)):
            cpu = time.process_time()
            for _ in range(count):
                parse()
            per[name] = (time.process_time() - cpu) / count * 1e6
        print(f"parse of a {len(data)} B answer, round {r + 1}: nats-py {per['nats-py']:5.1f} µs, counts_of "
              f"{per['counts_of']:4.1f} µs ({per['counts_of'] / per['nats-py']:.2f})", file=sys.stderr, flush=True)


def _run_child(code: str, url: str, reads: int, publish: bool) -> float:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([code, str(ROOT)])}
    out = subprocess.run([sys.executable, __file__, "--child", url, "--reads", str(reads)]
                         + (["--publish"] if publish else []), env=env, check=True, stdout=subprocess.PIPE, text=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reads", type=int, default=2000, help="reads per round and tree")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--code", action="append", default=[], help="another tree to time (repeatable)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--publish", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(asyncio.run(_child(args.child, args.reads, args.publish)))
        return
    sys.path.insert(0, str(ROOT))
    from benchmarks.needs_test_install import require

    require(__file__)  # the children read the README's sample ad from tests/ (tests.support needs pytest)
    from gamead_core.embedded import EmbeddedNats

    trees = [str(ROOT)] + args.code
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedNats(Path(tmp) / "nats").start()
        try:
            first = True
            for r in range(args.rounds):
                order = trees if r % 2 == 0 else trees[::-1]
                got = {}
                for tree in order:
                    got[tree] = _run_child(tree, server.url, args.reads, first)
                    first = False
                base = got[trees[0]]
                print(f"round {r + 1}: " + "   ".join(f"{Path(t).name or t}: {got[t]:6.1f} µs ({got[t] / base:.2f})"
                                                   for t in trees), flush=True)
        finally:
            server.stop()


if __name__ == "__main__":
    main()
