"""attack38b F2 on a real API: a ``message`` pattern RE2 accepts, searched in long DLQ messages, runs off the API's
event loop. ``.{1,500}ZZ`` compiles to 4,505 instructions (under the 5,000 cap) and RE2's DFA runs out of its 256
KiB on it, so each search of a 4,000-character message walks the NFA: 0.1-0.52 s a search in the drill, each on the
event loop, one entry at a time (``/healthz`` p50 0.22-0.31 s beside such reads against 0.02-0.12 s with cheap
patterns). Now such a search runs in a thread: the event loop goes on with other requests while it searches."""

from __future__ import annotations

import asyncio

import nats

from gamead_core.queue.dlq import DeadLetters
from gamead_core.queue.dlq_filter import DlqFilter, ScanBudget
from tests.integration.dlq_lane import Lane, lane, made_up_entry  # noqa: F401 - lane is a fixture

COSTLY = ".{1,500}ZZ"  #: 4,505 RE2 instructions: accepted, and the slowest kind of search it allows
SEARCHED = 8  #: entries whose messages are searched (one import request: under api.max_body_bytes)


def test_a_costly_message_search_leaves_the_event_loop_free(lane: Lane) -> None:
    """The API's own scan (``DeadLetters.entries``, as ``GET /v1/dlq`` and DLQ jobs run it) with ``.{1,500}ZZ`` over
    8 entries of 4,000 characters, beside a task that only hands the loop back (``sleep(0)``) and counts its turns.
    The figure: its turns against the same scan with a cheap pattern (``ZZ``), in the same run. Before, each search
    held the loop, so the task turned only while the scan read (773-2,433 turns, as many as the cheap scan's); now
    it turns all through each search too (89,256-106,688, load ~25)."""
    entries = [{**made_up_entry(f"Long {i}"), "errorMessage": "a" * 3999 + "!"} for i in range(SEARCHED)]
    assert lane.run_job("/v1/dlq/import", {"entries": entries})["counts"]["imported"] == SEARCHED

    async def scan(pattern: str) -> tuple[int, int]:
        nc = await nats.connect(lane.nats.url)
        turns, searched = 0, 0
        scanning = True

        async def turn() -> None:
            nonlocal turns
            while scanning:
                await asyncio.sleep(0)
                turns += 1

        spinner = asyncio.create_task(turn())
        try:
            budget = ScanBudget()
            async for _ in DeadLetters(nc.jetstream()).entries(DlqFilter(message=pattern), budget=budget):
                pass
            searched = budget.scanned
        finally:
            scanning = False
            await spinner
            await nc.close()
        return turns, searched

    cheap, _ = asyncio.run(scan("ZZ"))  # the same scan's reads, each search a few microseconds: its own turns
    turns, searched = asyncio.run(scan(COSTLY))
    print(f"the loop turned {turns} times while the scan searched {searched} entries with {COSTLY!r}, "
          f"{cheap} with 'ZZ'")
    assert searched == SEARCHED and turns > 10 * cheap
