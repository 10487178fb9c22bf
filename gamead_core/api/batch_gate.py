"""How many ``POST /ads/batch`` requests one API process works on at once (:func:`batch_turn`).

``gamead submit`` keeps 16 batches of 100 in flight. Each batch's steps (validating its body, encoding its records,
writing its messages, building its answer) run on the one event loop of the API, and an urgent ``POST /ads`` needs
several turns of that loop (its record's ack, its message's ack): with every batch in flight taking its step in each
turn, an urgent ad's ``POST`` waited p95 101-376 ms (attack26 F8). :data:`BATCHES_AT_ONCE` batches are worked on at
once; the others wait their turn, already read, in arrival order (a semaphore: FIFO), so an urgent ``POST`` waits
for a step of two batches per turn, not of sixteen. The batch route's throughput stays within the noise of
``benchmarks/bench_batch.py`` (one process, one loop: the waiting batches would only have shared it). A batch
waits :data:`TURN_WAIT` at most: when NATS stalls, the batches worked on wait for their acks up to
``api.publish_timeout``, and those behind them then go on as before instead of queueing for it in turn.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

#: batches worked on at once per API process: two, so one's writes to NATS overlap the other's encoding (measured
#: with benchmarks/bench_urgent_during_burst.py: an urgent POST's p95 38-90 ms; 99-141 ms with 4; 124-201 before)
BATCHES_AT_ONCE = 2


#: seconds a batch waits for its turn at most, then is worked on anyway: batches stuck on a stalled NATS (each up
#: to ``api.publish_timeout``) do not hold the others for ``publish_timeout`` × the batches ahead
TURN_WAIT = 1.0


@contextlib.asynccontextmanager
async def batch_turn(app: Any) -> AsyncIterator[None]:
    """Hold a turn of ``app`` (the API's Starlette app) for the block: one of :data:`BATCHES_AT_ONCE`, waited for
    in arrival order, at most :data:`TURN_WAIT` seconds (then the block runs without one). Raises nothing."""
    gate: asyncio.Semaphore | None = getattr(app.state, "batch_turns", None)
    if gate is None:  # made on first use, on the running loop
        gate = app.state.batch_turns = asyncio.Semaphore(BATCHES_AT_ONCE)
    held = True
    try:
        async with asyncio.timeout(TURN_WAIT):
            await gate.acquire()
    except TimeoutError:
        held = False
    try:
        yield
    finally:
        if held:
            gate.release()
