"""The room a connection's whole-stream reads share for their pull requests (left39a): at most
:data:`CONNECTION_BYTES` asked for and not yet answered, in units of :data:`REQUEST_BYTES` (one a request, more for a
message bigger than one), so nats-server never has more than that unsent to the connection for its reads, whatever
their number (:mod:`gamead_core.queue.pull_feed`, which takes and gives back the units); and what a message held
by a read counts (:func:`size`)."""

from __future__ import annotations

import asyncio
import weakref

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

REQUEST_BYTES = 512 * 1024  #: ``max_bytes`` of one pull request
CONNECTION_BYTES = 16 * 1024 * 1024  #: bytes asked for and not yet answered, all reads of one connection together
HEADERS = 64  #: bytes counted for a message's headers when it is held (:func:`size`)

_rooms: weakref.WeakKeyDictionary[NATS, tuple[asyncio.Semaphore, asyncio.Lock]] = weakref.WeakKeyDictionary()


def room_of(nc: NATS) -> tuple[asyncio.Semaphore, asyncio.Lock]:
    """The connection's room for requests (one unit a :data:`REQUEST_BYTES`), and the lock a read holds while it
    takes several units (a request for a message bigger than one)."""
    room = _rooms.get(nc)
    if room is None:
        room = _rooms[nc] = (asyncio.Semaphore(CONNECTION_BYTES // REQUEST_BYTES), asyncio.Lock())
    return room


def units(max_bytes: int) -> int:
    """How many :data:`REQUEST_BYTES` units a request of ``max_bytes`` takes of a connection's room, at most the
    whole room (pure)."""
    return min(CONNECTION_BYTES // REQUEST_BYTES, -(-max_bytes // REQUEST_BYTES))


def give_back(nc: NATS, held: int) -> None:
    """Give ``held`` units of ``nc``'s room back (a request answered, forgotten or dropped)."""
    room = room_of(nc)[0]
    for _ in range(held):
        room.release()


def size(msg: Msg) -> int:
    """About what ``msg`` took of its request's ``max_bytes``: its body, subject and reply and a headers' allowance
    (a headers-only delivery has no body: its messages are counted all the same, pure)."""
    return len(msg.data) + len(msg.subject) + len(msg.reply) + HEADERS
