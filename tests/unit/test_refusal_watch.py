"""The watch that ends an API or a worker on NATS refusing its credentials, or closing its client for good
(gamead_core.queue.refusal.stop_when_refused), acts on the news nats-py's callbacks bring (idle56): it looked every
0.5 s, so an idle process woke twice a second for it (issue 14 item 1). ``every`` (its old period) is an hour here:
a watch that still looked on a clock would see none of this in time. A real nats-py client object, no server."""

from __future__ import annotations

import asyncio

import nats
import nats.errors

from gamead_core.config import NatsSettings
from gamead_core.queue.closed import NatsClosed, note_nats_closed
from gamead_core.queue.refusal import CredentialsRefused, cleared, note_error, stop_when_refused
from tests.waits import until

REFUSAL = nats.errors.Error("nats: 'Authorization Violation'")
AWAY = nats.errors.TimeoutError()
HOUR = 3600.0


def _watch(nc: nats.NATS, looks: list[int], settings: NatsSettings, stop: asyncio.Event) -> asyncio.Future[object]:
    def nc_of() -> nats.NATS:
        looks.append(1)
        return nc

    return asyncio.ensure_future(stop_when_refused(nc_of, settings, "nats://127.0.0.1:4222", stop, every=HOUR))


def test_each_news_is_looked_at_and_a_lasting_refusal_ends_the_process() -> None:
    async def run() -> object:
        nc, looks, stop = nats.NATS(), [], asyncio.Event()
        watch = _watch(nc, looks, NatsSettings(refused_exit_after=1), stop)
        await until(lambda: len(looks) == 1, what="the first look", timeout=20.0)
        note_error(nc, AWAY, away=True)  # news that ends nothing: looked at, the watch goes on
        await until(lambda: len(looks) == 2, what="a look at the news", timeout=20.0)
        assert not watch.done()
        note_error(nc, REFUSAL, away=True)  # a run of refusals begins: it ends the process once it lasted 1 s
        return await asyncio.wait_for(watch, 30)

    assert isinstance(asyncio.run(run()), CredentialsRefused)


def test_a_client_nats_closed_for_good_ends_the_process_at_once_and_a_stop_ends_the_watch() -> None:
    async def run() -> tuple[object, object]:
        nc, looks, stop = nats.NATS(), [], asyncio.Event()
        watch = _watch(nc, looks, NatsSettings(refused_exit_after=30), stop)
        await until(lambda: len(looks) == 1, what="the first look", timeout=20.0)
        nc._err = nats.errors.Error("nats: maximum payload violation")  # what nats-py keeps as last_error
        assert note_nats_closed(nc) is not None  # its closed_cb
        closed = await asyncio.wait_for(watch, 30)
        other, stop2 = nats.NATS(), asyncio.Event()
        idle = _watch(other, [], NatsSettings(refused_exit_after=30), stop2)
        note_error(other, REFUSAL, away=True)
        cleared(other)  # reconnected: the run is over
        stop2.set()
        return closed, await asyncio.wait_for(idle, 30)

    closed, stopped = asyncio.run(run())
    assert isinstance(closed, NatsClosed) and "maximum payload violation" in closed.message
    assert stopped is None
