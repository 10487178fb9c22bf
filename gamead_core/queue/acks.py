"""JetStream publish acks on one reply subscription per connection, with one timer for all their deadlines.

Why not nats-py's own calls:

* ``js.publish(timeout=…)`` awaits its ack with ``asyncio.wait_for``: a timer armed and cancelled, a second
  future and two callbacks per message (~10-25 µs of a ~180 µs ``POST /ads`` in-process; issue 14.4);
* ``js.publish_async`` (one reply subscription, no timer) loses every error ack: its reply handler calls
  ``APIError.from_error``, which *raises* for the codes that matter (503 "maximum messages exceeded", 500,
  404, 400), inside the subscription's callback, so the future is never resolved and the publisher waits out
  its whole timeout for a ``QueueUnavailable`` "did not answer in time" where ``QueueFull`` was answered at once.

:func:`publish_acked` publishes with a reply subject of its own connection-wide wildcard subscription
(``_INBOX.<nuid>.*``, made on first use; nats-py re-subscribes it after a reconnect), resolves the future with
an :class:`Ack` (the fields of nats-py's ``PubAck`` gamead reads; ``PubAck.from_response`` walks every
dataclass field per message) or the error nats-py would have raised (``APIError`` subclasses,
``NoStreamResponseError`` for a no-responders status), and keeps the deadline with
:func:`gamead_core.queue.deadlines.expire_after`. Futures leave the map when they are done (answered, expired
or cancelled): memory is bounded by the publishes in flight within one timeout.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import NamedTuple, TypeVar
from weakref import WeakKeyDictionary

import orjson
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.errors import APIError, NoStreamResponseError

from gamead_core import names
from gamead_core.queue.deadlines import expire_after

__all__ = ["Ack", "gather_acks", "parse_ack", "pending", "publish_acked"]

_NO_RESPONDERS = "503"
E = TypeVar("E")


class Ack(NamedTuple):
    """JetStream's answer to a stored publish (``{"stream", "seq", "duplicate"}``, nats-server ``JSPubAckResponse``).
    ``seq`` of a ``duplicate`` is the first message's with that ``Nats-Msg-Id``."""

    stream: str | None
    seq: int
    duplicate: bool


def parse_ack(msg: Msg) -> Ack:
    """The :class:`Ack` of a JetStream publish reply. Raises what ``js.publish`` raises for it:
    ``NoStreamResponseError`` (no stream listens on the subject), the ``APIError`` subclass of an error reply
    (``nats.js.errors.APIError.from_error``: ``ServiceUnavailableError`` for 503 …), ``APIError`` for a reply
    that is not JSON."""
    headers = msg.headers
    if headers and headers.get(names.HDR_STATUS) == _NO_RESPONDERS:
        raise NoStreamResponseError
    try:
        resp = orjson.loads(msg.data)
    except orjson.JSONDecodeError as exc:
        raise APIError(description="the publish ack is not JSON") from exc
    if not isinstance(resp, dict):
        raise APIError(description="the publish ack is not a JSON object")
    error = resp.get("error")
    if error is not None:
        raise APIError.from_error(error)  # raises the specific class itself for most codes
    return Ack(resp.get("stream"), int(resp.get("seq") or 0), bool(resp.get("duplicate")))


class _Acks:
    """The reply subscription of one connection and the futures waiting on it, by token."""

    def __init__(self, nc: NATS) -> None:
        self._nc = nc
        self._prefix = ""
        self._cut = 0
        self._next = 0
        self._futures: dict[str, asyncio.Future[Ack]] = {}
        self._lock = asyncio.Lock()

    async def _subscribe(self) -> None:
        async with self._lock:
            if self._prefix:
                return
            prefix = self._nc.new_inbox() + "."
            await self._nc.subscribe(prefix + "*", cb=self._on_reply)
            self._cut = len(prefix)
            self._prefix = prefix

    async def _on_reply(self, msg: Msg) -> None:
        future = self._futures.get(msg.subject[self._cut:])
        if future is None or future.done():
            return  # expired, or its publisher went away
        try:
            future.set_result(parse_ack(msg))
        except Exception as exc:  # noqa: BLE001 - the publisher's error, raised where it awaits
            future.set_exception(exc)

    async def publish(self, subject: str, payload: bytes, headers: dict[str, str], timeout: float
                      ) -> asyncio.Future[Ack]:
        if not self._prefix:
            await self._subscribe()
        self._next += 1
        token = str(self._next)
        future: asyncio.Future[Ack] = asyncio.get_running_loop().create_future()
        futures = self._futures
        futures[token] = future
        future.add_done_callback(lambda _: futures.pop(token, None))
        try:
            await self._nc.publish(subject, payload, reply=self._prefix + token, headers=headers)
        except BaseException:
            future.cancel()
            raise
        expire_after(future, timeout)
        return future


_ACKS: WeakKeyDictionary[NATS, _Acks] = WeakKeyDictionary()


async def publish_acked(js: JetStreamContext, subject: str, payload: bytes, *, headers: dict[str, str],
                        timeout: float) -> asyncio.Future[Ack]:
    """Publish to a JetStream subject and return the future of its ack (``timeout`` seconds from now, then
    ``asyncio.TimeoutError``). Raises nats-py's errors if the publish itself fails (connection closed,
    reconnect buffer full …); the future carries the ack's errors (see :func:`parse_ack`). Call it inside
    ``nats_boundary()`` and await the future there too."""
    nc: NATS = js._nc  # noqa: SLF001 - nats-py keeps the connection of a JetStream context here (all 2.x)
    acks = _ACKS.get(nc)
    if acks is None:
        acks = _ACKS[nc] = _Acks(nc)
    return await acks.publish(subject, payload, headers, timeout)


def pending(js: JetStreamContext) -> int:
    """Acks awaited on ``js``'s connection (for tests and read-outs)."""
    acks = _ACKS.get(js._nc)  # noqa: SLF001
    return len(acks._futures) if acks is not None else 0  # noqa: SLF001


async def gather_acks(sent: Sequence[asyncio.Future[Ack] | E], translated: Callable[[BaseException], E], *,
                      timeout: float | None = None) -> list[Ack | E]:
    """The answers of pipelined publishes, in order. ``sent``: per publish, the future :func:`publish_acked`
    returned, or what sending it raised, already translated (kept as it is). Waits for every future, at most
    ``timeout`` seconds (None: each ends by its own deadline; the late ones are cancelled), then gives its
    :class:`Ack`, or ``translated(error)``: nats-py's error of an error ack, ``asyncio.TimeoutError`` for an ack
    that did not come (expired or cancelled: the message may be stored)."""
    waiting = [f for f in sent if isinstance(f, asyncio.Future)]
    if waiting:
        _, late = await asyncio.wait(waiting, timeout=timeout)
        for future in late:
            future.cancel()
    out: list[Ack | E] = []
    for item in sent:
        if not isinstance(item, asyncio.Future):
            out.append(item)
        elif item.cancelled():
            out.append(translated(asyncio.TimeoutError()))
        elif (exc := item.exception()) is not None:
            out.append(translated(exc))
        else:
            out.append(item.result())
    return out
