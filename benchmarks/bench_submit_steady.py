"""Where a single ``POST /ads`` spends its CPU at a *steady* rate (issue 14.4, the API's part of the rate sweep).

Run from the repository root::

    .venv/bin/python benchmarks/bench_submit_steady.py                      # 100, 300, 1,000/s, 5 s each, ~1 minute
    .venv/bin/python benchmarks/bench_submit_steady.py --rates 500 --seconds 10 --output json

At 100-1,000 ads/s the API spends 2-5x the CPU per request it spends when saturated
(``bench_submit_profile.py``): each request then wakes the process on its own, so nothing is amortised. This
benchmark splits that cost. In this one process, on uvloop as ``gamead serve`` runs, an embedded ``nats-server``
beside it, each rate is held open loop (one request started every 1/rate s, driven through ASGI: no HTTP
server, no sockets to the client) for ``--seconds``, four ways in turn:

* ``gamead`` — gamead's app with its real lifespan: gate, validation, the record created and the message
  published, both acks awaited;
* ``gamead, no NATS`` — the same app with ``Intake.submit`` replaced (on this one instance) by a stub that makes
  the id, the ``AdRecord`` and its JSON and answers: everything but the two JetStream round trips;
* ``plain FastAPI`` — the peer of ``bench_submit_profile.py``: FastAPI validating the same body, answering 202;
* ``two round trips`` — no app: gamead's own publish-and-ack (``gamead_core.queue.acks.publish_acked``) of a
  600-byte message to a stream, awaited, then a second one: the floor of the submit's NATS path;
* ``one, pipelined`` — the same two messages sent back to back and their acks awaited together
  (``gamead_core.queue.acks.publish_many``): what one round trip per ad instead of two would cost.

Printed per rate and way: CPU µs per request (``time.process_time`` of the whole process over the step, so the
app's background work — stats sampler, heartbeat, ~5 ms/s — is included, and so is the pacing: one timer and one
task per request), and the load average. Read the differences: (gamead − no NATS) is what the two round trips
cost inside the app; compare it with ``two round trips``, and (no NATS) with ``plain FastAPI``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_submit_profile import call, plain_app  # noqa: E402

from gamead_cli.generate import generate_ads  # noqa: E402
from gamead_core.ad_ids import new_ad_id  # noqa: E402
from gamead_core.api.app import create_app  # noqa: E402
from gamead_core.config import load_settings  # noqa: E402
from gamead_core.embedded import EmbeddedNats  # noqa: E402
from gamead_core.intake import Accepted  # noqa: E402
from gamead_core.models import AdRecord, AdStatus, AdSubmission, utcnow  # noqa: E402
from gamead_core.queue.acks import publish_acked, publish_many  # noqa: E402
from gamead_core.store.ads import encode  # noqa: E402

WAYS = ("gamead", "gamead, no NATS", "plain FastAPI", "two round trips", "one, pipelined")


async def paced(op: Callable[[int], Awaitable[Any]], rate: float, seconds: float) -> float:
    """Start ``op(i)`` every 1/``rate`` s for ``seconds`` (open loop), wait for all; CPU µs per op."""
    n = max(1, int(rate * seconds))
    running: set[asyncio.Future[Any]] = set()
    cpu = time.process_time()
    start = time.perf_counter()
    for i in range(n):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.ensure_future(op(i))
        running.add(task)
        task.add_done_callback(running.discard)
    while running:
        await asyncio.sleep(0.01)
    return (time.process_time() - cpu) / n * 1e6


async def _stub_submit(ad: AdSubmission, idempotency_key: str | None = None, *, scope: str = "") -> Accepted:
    record = AdRecord(id=new_ad_id(), status=AdStatus.QUEUED, priority=ad.priority, submitted_at=utcnow(), ad=ad)
    encode(record)
    return Accepted(record, duplicate=False)


async def run(rates: list[float], seconds: float) -> list[dict[str, Any]]:
    bodies = [json.dumps(a, separators=(",", ":")).encode() for a in generate_ads(2000, seed=5)]
    from bench_pipeline import scratch_dir, tune_like_serve  # noqa: PLC0415
    server = EmbeddedNats(scratch_dir("gamead-bench-steady-")).start()
    rows: list[dict[str, Any]] = []
    try:
        gamead = create_app(load_settings(), server.url)
        plain = plain_app()
        tune_like_serve()
        async with gamead.router.lifespan_context(gamead):
            link = gamead.state.link
            await asyncio.wait_for(link.ready.wait(), 30)
            js = link.js
            await js.add_stream(name="BENCH_STEADY", subjects=["bench.steady.>"], storage="file")
            payload = b"x" * 600
            intake = link.intake._intake  # noqa: SLF001 - the Intake under the storage-probe wrapper

            async def submit(i: int) -> None:
                assert await call(gamead, bodies[i % len(bodies)]) == 202

            async def no_nats(i: int) -> None:
                intake.submit = _stub_submit  # this instance only; removed below
                try:
                    assert await call(gamead, bodies[i % len(bodies)]) == 202
                finally:
                    del intake.submit

            async def peer(i: int) -> None:
                assert await call(plain, bodies[i % len(bodies)]) == 202

            async def round_trips(i: int) -> None:
                for kind in ("k", "w"):
                    await (await publish_acked(js, f"bench.steady.{kind}", payload,
                                               headers={"Nats-Msg-Id": f"{kind}{i}-{time.monotonic_ns()}"},
                                               timeout=5.0))

            async def pipelined(i: int) -> None:
                stamp = time.monotonic_ns()
                await publish_many(js, [(f"bench.steady.{kind}", payload, {"Nats-Msg-Id": f"p{kind}{i}-{stamp}"})
                                        for kind in ("k", "w")], timeout=5.0)

            await paced(submit, 1000, 1.0)  # warm-up
            for rate in rates:
                row: dict[str, Any] = {"rate": rate}
                for way, op in zip(WAYS, (submit, no_nats, peer, round_trips, pipelined), strict=True):
                    row[way] = round(await paced(op, rate, seconds), 1)
                row["load_average"] = " ".join(f"{x:.1f}" for x in os.getloadavg())
                rows.append(row)
                print("  " + "; ".join(f"{k} {v}" for k, v in row.items()), file=sys.stderr, flush=True)
    finally:
        server.stop()
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rates", default="100,300,1000", help="comma-separated request rates, per second")
    p.add_argument("--seconds", type=float, default=5.0, help="seconds held per rate and way (5)")
    p.add_argument("--output", choices=("table", "json"), default="table")
    a = p.parse_args()
    import uvloop  # noqa: PLC0415

    uvloop.install()
    rows = asyncio.run(run([float(r) for r in a.rates.split(",")], a.seconds))
    if a.output == "json":
        print(json.dumps(rows, indent=1))
        return
    print("CPU µs per request of this whole process at a steady rate (ASGI, uvloop, open loop):")
    print(f"{'rate/s':>7} " + " ".join(f"{w:>17}" for w in WAYS) + "  load average")
    for row in rows:
        print(f"{row['rate']:>7.0f} " + " ".join(f"{row[w]:>17.1f}" for w in WAYS) + f"  {row['load_average']}")


if __name__ == "__main__":
    main()
