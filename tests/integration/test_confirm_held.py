"""Before a suspect ad runs alone, what its worker holds is at the server (gamead_core.worker.confirm, crashflake50).

The crash-loop test at load 5 (tests/integration/test_worker_faults.py, traced): the poison, suspect, was claimed
(``settle.begin``) while a pull under way brought 3 innocent ads; the start step held and announced them (an
unconfirmed publish) 1 ms before the poison crashed the worker, and that announcement never reached the registry:
the recovery said "holding 1 announced ad(s)" and the 3 waited ack_wait (300 s). A crash within a millisecond cannot
be held still in a test; this one checks the confirmation the suspect path now waits for: announced, the server's
answer to a PING awaited, and announced and awaited again when a start step held an ad meanwhile. Real nats-server."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import nats
import orjson

from gamead_core.embedded import EmbeddedNats
from gamead_core.queue.flush_all import flush_all
from gamead_core.worker.confirm import confirm_held
from gamead_core.worker.held import HeldAds
from tests.nats_filter import PublishFilter

SUBJECT = "crashflake50.announced"


def _run(server: EmbeddedNats, hold_during_first: bool, via: str | None = None) -> tuple[bool, int, list[list[str]]]:
    """confirm_held over a ledger holding ad-1 (and, with ``hold_during_first``, ad-2 held by a "start step" while
    the first confirmation is awaited), its connection to ``via`` (a proxy's URL) or the server; returns what it
    said, how many announcements it made and what a plain subscriber of the server got of them, every one of them
    in by the time it returned."""

    async def main() -> tuple[bool, int, list[list[str]]]:
        nc, watcher = await nats.connect(via or server.url), await nats.connect(server.url)
        got: list[list[str]] = []
        try:
            async def note(msg: nats.aio.msg.Msg) -> None:
                got.append(orjson.loads(msg.data))

            await watcher.subscribe(SUBJECT, cb=note)
            await flush_all(watcher)  # the server has the subscription (watcher.flush's PING went ahead of it)
            held = HeldAds()
            held.hold(("S", 1), "ad-1", "1.1", "ack-1")
            calls = 0

            async def announce() -> None:  # as the worker's: an unconfirmed publish of the ledger
                nonlocal calls
                calls += 1
                await nc.publish(SUBJECT, orjson.dumps([w["adId"] for w in held.wire()]))
                if calls == 1 and hold_during_first:  # runs while the first PING waits for its answer
                    asyncio.get_running_loop().call_soon(held.hold, ("S", 2), "ad-2", "2.1", "ack-2")

            confirmed = await confirm_held(held, announce, nc, 5.0)
            await watcher.flush()  # the watcher's own PING: what the server sent it before is in
            return confirmed, calls, got
        finally:
            await nc.close()
            await watcher.close()

    return asyncio.run(main())


def test_what_a_start_step_holds_during_the_confirmation_is_announced_and_confirmed_too(
    fresh_nats: Callable[[], EmbeddedNats],
) -> None:
    confirmed, calls, got = _run(fresh_nats(), hold_during_first=True)
    assert confirmed and calls == 2, (confirmed, calls)
    assert got == [["ad-1"], ["ad-1", "ad-2"]]


def test_a_ledger_that_did_not_change_is_announced_and_confirmed_once(
    fresh_nats: Callable[[], EmbeddedNats],
) -> None:
    confirmed, calls, got = _run(fresh_nats(), hold_during_first=False)
    assert confirmed and calls == 1 and got == [["ad-1"]]


def test_an_announcement_slow_on_its_way_is_at_the_server_when_the_confirmation_returns(
    fresh_nats: Callable[[], EmbeddedNats], links: list[PublishFilter],
) -> None:
    """The announcement's bytes reach nats-server 2 s after the worker wrote them (a proxy holds them, and what the
    worker writes after them): the confirmation waits for them. Before (nc.flush): confirmed at once, the watcher
    got nothing (``[]``); after: ``[['ad-1']]``."""
    server = fresh_nats()
    proxy = PublishFilter(("127.0.0.1", server.port)).start()
    links.append(proxy)
    proxy.hold(SUBJECT, 2.0)
    confirmed, calls, got = _run(server, hold_during_first=False, via=proxy.url)
    assert confirmed and calls == 1 and got == [["ad-1"]], (confirmed, calls, got)
