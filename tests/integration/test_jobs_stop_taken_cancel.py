"""hang50: an API's shutdown hung for ever in its jobs' stop (test_cancel_after_work_done: pytest-timeout's 120 s,
1 in 4 fresh clones' suites at load 20; a repro of its lifespan, 1 run in ~150 at load 3 + 3 busy loops: the
lifespan's exit waiting on ``JobService.stop``'s ``gather`` of the sweeper, the sweeper ``cancelling`` but asleep
in its next ``sleep(interval)``). Python 3.11's ``asyncio.wait_for`` returns the result of an await that ended as
the cancel came, taking the cancel (nats-py waits so on every request), so a sweeper cancelled in a NATS read
swept on. Here the race is forced by its order: the sweeper's store is opened through a ``wait_for`` whose await
ends in the same turn of the loop as the stop's cancel. Real nats-server, real jobs bucket.

Figure without the fix: ``jobs.stop()`` still waiting after 20 s (it never ends); with it, it ends and the sweeper
with it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import nats

from gamead_core.config import GameadSettings
from gamead_core.embedded import EmbeddedNats
from gamead_core.jobs.runner import JobService
from gamead_core.jobs.store import JobStore
from gamead_core.queue.topology import ensure_topology


def test_a_jobs_stop_ends_though_its_sweeper_took_the_first_cancel(fresh_nats: Callable[[], EmbeddedNats]) -> None:
    server = fresh_nats()
    settings = GameadSettings()

    async def main() -> tuple[bool, bool]:
        nc = await nats.connect(server.url)
        try:
            await ensure_topology(nc.jetstream(), settings)
            store = await JobStore.open(nc.jetstream())
            loop = asyncio.get_running_loop()
            answer: asyncio.Future[JobStore] = loop.create_future()
            asked = asyncio.Event()

            async def open_store() -> JobStore:  # nats-py's request: a wait_for on its reply's future
                asked.set()
                return await asyncio.wait_for(answer, 30)

            jobs = JobService(settings, "api-stopping", ops=lambda: None)  # type: ignore[arg-type,return-value]
            await jobs.start(open_store)
            await asked.wait()
            answer.set_result(store)  # the reply comes in the turn the stop's cancel does
            stopping = asyncio.ensure_future(jobs.stop())
            done, _ = await asyncio.wait({stopping}, timeout=20)
            sweeper = jobs._sweeper
            return bool(done), sweeper is not None and sweeper.done()
        finally:
            await nc.close()

    stopped, sweeper_ended = asyncio.run(main())
    assert stopped, "the jobs' stop did not end within 20 s (the API's shutdown with it)"
    assert sweeper_ended, "the sweeper still runs after the jobs' stop: this stopping node would still take jobs over"
