"""An arq worker with one no-op job, Redis ``BENCH_PEER_BROKER``: ``arq arq_noop.WorkerSettings`` is the peer of
one gamead worker process in ``bench_peers.py``. Tuned as its docs allow for a burn-down: ``max_jobs``
(``BENCH_ARQ_MAX_JOBS``, 16) concurrent jobs, ``poll_delay`` ``BENCH_ARQ_POLL_DELAY`` s (0.001; arq's default
0.5 s caps a worker at ``max_jobs`` jobs per half second), no result kept (``keep_result=0``)."""

from __future__ import annotations

import os
from typing import Any

from arq.connections import RedisSettings
from tally import tally


async def noop(ctx: dict[str, Any]) -> None:
    """Nothing but the count."""
    tally()


class WorkerSettings:
    functions = (noop,)
    redis_settings = RedisSettings.from_dsn(os.environ.get("BENCH_PEER_BROKER", "redis://127.0.0.1:6379/0"))
    max_jobs = int(os.environ.get("BENCH_ARQ_MAX_JOBS", "16"))
    poll_delay = float(os.environ.get("BENCH_ARQ_POLL_DELAY", "0.001"))
    keep_result = 0
    handle_signals = True


async def _enqueue(n: int) -> None:
    import asyncio

    from arq import create_pool

    pool = await create_pool(WorkerSettings.redis_settings)
    try:
        for start in range(0, n, 500):
            await asyncio.gather(*(pool.enqueue_job("noop") for _ in range(min(500, n - start))))
    finally:
        await pool.aclose()


if __name__ == "__main__":  # `python arq_noop.py N`: enqueue N jobs (the backlog), then exit
    import asyncio
    import sys

    asyncio.run(_enqueue(int(sys.argv[1])))
