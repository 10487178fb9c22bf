"""A worker's stop when NATS is connected but does not answer (nats-server frozen: SIGSTOP, a hung host), probe47 F5.

Every step of a stop needs NATS: the long polls' end and the inboxes' drain, the hand-backs (``nak``), the refunds
and acks, the registry entry's removal, the connection's drain. With NATS silent each waited its own deadline, and
the last writes were tried again until ``worker.drain_timeout`` + 3 s (they outlast a nats-server *restart*, which
nats-py sees as a disconnect: :func:`gamead_core.shutdown.last_writes`): an idle worker took 33-37 s to exit, and
said nothing for ~31 s. So the stop begins with one JetStream request (:func:`answers`, ``nats.request_timeout`` at
most); unanswered, one WARNING says what the worker gives up (:func:`giving_up`) and the stop gives it up: the
running analyses are cut (their ads come back, like its unstarted ones, once ``queue.ack_wait`` passes), the long
polls are not waited for, the registry entry's removal is tried once (it expires after ``registry.ttl``), the
connection is closed without its drain. The stop then takes about three request timeouts (that request, the removal's
one try, the close), a busy worker's two more for its cancelled analyses' shielded writes."""

from __future__ import annotations

import asyncio
import logging

from nats.aio.client import Client as NATS
from nats.js import JetStreamContext

from gamead_core.config import GameadSettings
from gamead_core.count_words import counted
from gamead_core.queue.liveness import round_trip
from gamead_core.worker.drain import LastWrites

log = logging.getLogger("gamead_core.worker.runtime")  # the worker's own logger


async def answers(nc: NATS, js: JetStreamContext) -> bool:
    """False when NATS is connected and leaves one JetStream API request unanswered for the context's timeout
    (``nats.request_timeout``); True otherwise (answered, or away: a disconnect is waited for by the stop's own steps,
    as before). :func:`gamead_core.queue.liveness.round_trip`, never a timed-out ``flush``: that can wedge nats-py's
    read loop for good (the reason liveness.py gives)."""
    return not nc.is_connected or await round_trip(js)


def giving_up(worker_id: str, *, timeout: float, held: int, ack_wait: float, ttl: float) -> str:
    """The WARNING said once at a stop that finds NATS silent (pure)."""
    return (f"stopping with NATS not answering (no answer within nats.request_timeout, {timeout:g} s): worker "
            f"{worker_id} gives up what needs NATS: its {counted(held, 'held ad')} are not handed back (running ones "
            f"are cut) and come back when queue.ack_wait ({ack_wait:g} s) passes; its registry entry is not removed "
            f"and expires after registry.ttl ({ttl:g} s); the stop ends within a few request timeouts")


async def stop_begins(nc: NATS, js: JetStreamContext, worker_id: str, settings: GameadSettings, held: int,
                      ack_wait: float, *, writes: LastWrites, abort: asyncio.Event) -> bool:
    """The first step of a worker's stop: True when NATS answers (or is away); False when it is silent, then said
    (:func:`giving_up`), the drain cut (``abort``) and the last writes given up (``writes``)."""
    timeout, ttl = settings.nats.request_timeout, settings.registry.ttl
    if await answers(nc, js):
        return True
    log.warning("%s", giving_up(worker_id, timeout=timeout, held=held, ack_wait=ack_wait, ttl=ttl),
                extra={"worker_id": worker_id, "held": held})
    abort.set()
    writes.give_up()
    return False


__all__ = ["answers", "giving_up", "stop_begins"]
