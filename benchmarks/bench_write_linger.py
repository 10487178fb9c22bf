"""The API's write linger (``api.write_linger_ms``, :mod:`gamead_core.queue.write_linger`) on and off, in the same run
(issue 14, session 39).

Run from the repository root::

    .venv/bin/python benchmarks/bench_write_linger.py                        # 1,000/s, 2 ms, 6 rounds x 4 s each way
    .venv/bin/python benchmarks/bench_write_linger.py --linger-ms 3 --rounds 8 --seconds 3

One process: gamead's app with its real lifespan (gate, validation, the record created and the message published,
both acks awaited) driven through ASGI on uvloop, as ``bench_submit_steady.py`` drives it (one request started
every 1/rate s, open loop; no HTTP server), on an embedded ``nats-server``. Each round holds the rate once with the
API connection's linger off and once with it on (order swapped every round; the linger is set on the live
connection with :func:`~gamead_core.queue.write_linger.linger_writes`). Printed per round and way: this process's
CPU µs per request (``time.process_time``: the API, with its pacing) and nats-server's (``/proc/PID/stat``); then the
medians and the rounds' own on − off differences of the two together. No worker runs: nats-server's figure is what
the API's writes cost it. On a machine loaded past its cores the API batches on its own (it wakes to many events at
once) and the two ways come closer.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_pipeline import proc_cpu_seconds, scratch_dir, tune_like_serve  # noqa: E402
from bench_submit_profile import call  # noqa: E402
from bench_submit_steady import paced  # noqa: E402

from gamead_cli.generate import generate_ads  # noqa: E402
from gamead_core.api.app import create_app  # noqa: E402
from gamead_core.config import load_settings  # noqa: E402
from gamead_core.embedded import EmbeddedNats  # noqa: E402
from gamead_core.queue.write_linger import linger_writes  # noqa: E402


async def run(rate: float, seconds: float, rounds: int, linger_ms: float) -> dict[str, list[tuple[float, float]]]:
    bodies = [json.dumps(a, separators=(",", ":")).encode() for a in generate_ads(2000, seed=5)]
    server = EmbeddedNats(scratch_dir("gamead-bench-linger-")).start()
    out: dict[str, list[tuple[float, float]]] = {"off": [], "on": []}
    try:
        app = create_app(load_settings(), server.url)
        tune_like_serve()
        async with app.router.lifespan_context(app):
            link = app.state.link
            await asyncio.wait_for(link.ready.wait(), 30)

            async def submit(i: int) -> None:
                assert await call(app, bodies[i % len(bodies)]) == 202

            await paced(submit, rate, 1.0)  # warm-up
            for r in range(rounds):
                for way in ("off", "on") if r % 2 == 0 else ("on", "off"):
                    linger_writes(link.nc, linger_ms if way == "on" else 0.0)
                    before = proc_cpu_seconds(server.proc.pid) or 0.0
                    api = await paced(submit, rate, seconds)
                    nats = ((proc_cpu_seconds(server.proc.pid) or 0.0) - before) / (rate * seconds) * 1e6
                    out[way].append((api, nats))
                    print(f"round {r + 1} linger {way}: API {api:.1f} µs, nats-server {nats:.1f} µs per request "
                          f"(load {os.getloadavg()[0]:.1f})", file=sys.stderr, flush=True)
    finally:
        server.stop()
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rate", type=float, default=1000.0, help="POST /ads per second (1,000)")
    p.add_argument("--seconds", type=float, default=4.0, help="seconds per round and way (4)")
    p.add_argument("--rounds", type=int, default=6, help="rounds, each way once per round (6)")
    p.add_argument("--linger-ms", type=float, default=2.0, help="the linger when on, ms (2: the default)")
    a = p.parse_args()
    import uvloop  # noqa: PLC0415

    uvloop.install()
    res = asyncio.run(run(a.rate, a.seconds, a.rounds, a.linger_ms))
    for way, rows in res.items():
        print(f"linger {way}: median CPU µs per request: API {statistics.median(x for x, _ in rows):.1f}, nats-server "
              f"{statistics.median(y for _, y in rows):.1f}, together {statistics.median(x + y for x, y in rows):.1f}")
    diffs = [sum(on) - sum(off) for on, off in zip(res["on"], res["off"], strict=True)]
    print(f"on − off per round (API + nats-server, µs): {', '.join(f'{d:+.1f}' for d in diffs)}; median "
          f"{statistics.median(diffs):+.1f}; lower in {sum(d < 0 for d in diffs)} of {len(diffs)}")


if __name__ == "__main__":
    main()
