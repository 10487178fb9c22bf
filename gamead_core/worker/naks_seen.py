"""The hand-backs (``nak``) of work messages that nats-server announces, whichever worker sent them.

A redelivery with nothing in its ad's record about the delivery before it is either a hand-back by some worker
(normal: a busy worker's prefetched ad, a storage outage's) or a delivery that never ended (lost on its way, or its
worker died, froze or held it past ``ack_wait``: worth a WARNING, :mod:`gamead_core.worker.redelivery`). A worker
knows its own hand-backs only; an ad that a busy worker handed back after waiting longer than ``ack_wait`` (a
backlog) reached the other worker looking lost (left41b: 43 such lines in a 13,044-ad burn-down of two workers at
``ack_wait`` 5 s, none lost). nats-server publishes an advisory for every ``nak`` it takes, on
``$JS.EVENT.ADVISORY.CONSUMER.MSG_NAKED.<stream>.<consumer>``, with the stream sequence and the delivery count it
handed back (``JSConsumerDeliveryNakAdvisory``, nats-server ``consumer.go`` ``processNak``), before it puts the
message back for redelivery. :class:`NaksSeen` subscribes to them and remembers, per work-stream message, the
delivery count of its last ``nak``: a redelivery whose previous delivery was nak'ed is a hand-back, exactly.

Bounded: at most :data:`REMEMBERED` messages (the oldest forgotten first), advisories over :data:`MAX_BYTES` or of
another stream ignored; each is parsed in the connection's read loop (≤ 2 KiB of JSON). A subscription the server
refuses (a user without the permission) leaves the worker with its own hand-backs only, said once: nats-py's
``subscribe`` never raises for it (the refusal is a later ``-ERR 'Permissions Violation for Subscription …'`` to the
error callback), so :meth:`NaksSeen.start` reads the connection's last error after a flush, and again ``timeout`` s
later (nats-server sent the ``-ERR`` after the flush's ``PONG`` in 4 of 20 connections: nats-py's flush wrote its
``PING`` ahead of the ``SUB``; :func:`~gamead_core.queue.flush_all.flush_all` sends it after); the refused subscription
is dropped, so that nats-py does not send it again at each reconnection (review41b F2: the line was never said).

A doctor run hears them too, from its start to its :meth:`NaksSeen.stop` (:mod:`gamead_core.doctor.unheld`: each
message nak'ed meanwhile is a timed retry, not a dead worker's delivery), saying a refusal its own way (``say``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Callable

import orjson
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from gamead_core import clock, names
from gamead_core.errors import error_text
from gamead_core.queue.flush_all import flush_all
from gamead_core.queue.inline_sub import subscribe_inline
from gamead_core.queue.read_end import unsubscribe_quietly

log = logging.getLogger("gamead_core.worker.runtime")  # the worker's own logger, as handle.py's

#: nats-server's nak advisories of every consumer (``JSAdvisoryConsumerMsgNakPre`` + ``.<stream>.<consumer>``)
SUBJECT = "$JS.EVENT.ADVISORY.CONSUMER.MSG_NAKED.*.*"
#: Messages whose last nak is remembered: enough for every hand-back of a backlog's minutes, whatever the flow
REMEMBERED = 10_000
#: An advisory larger than this is not nats-server's (~300 bytes): not parsed
MAX_BYTES = 2048
_STREAM_TOKEN = 5  #: $JS.EVENT.ADVISORY.CONSUMER.MSG_NAKED.<stream>.<consumer>


def parse_nak(subject: str, data: bytes) -> tuple[str, int, int] | None:
    """``(work stream, stream sequence, delivery count)`` of a nak advisory on ``subject`` with body ``data``, or
    None: not a work stream's (:func:`gamead_core.names.partition_of_stream`), too large, not JSON, or without a
    positive ``stream_seq`` and ``deliveries`` naming the subject's stream. Pure."""
    tokens = subject.split(".")
    if len(tokens) != _STREAM_TOKEN + 2 or len(data) > MAX_BYTES:
        return None
    stream = tokens[_STREAM_TOKEN]
    if names.partition_of_stream(stream) is None:
        return None
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(doc, dict) or doc.get("stream") != stream:
        return None
    seq, count = doc.get("stream_seq"), doc.get("deliveries")
    if type(seq) is not int or type(count) is not int or seq <= 0 or count <= 0:
        return None
    return stream, seq, count


class NaksSeen:
    """The delivery count of the last ``nak`` nats-server announced for each work-stream message (at most
    ``remembered``; ``len``: how many): :meth:`naked`. :meth:`start` subscribes on a connection, :meth:`stop`
    unsubscribes; ``say`` gets why it could not (default: the worker's WARNING)."""

    def __init__(self, remembered: int = REMEMBERED, *, say: Callable[[str], None] | None = None) -> None:
        self._last: OrderedDict[tuple[str, int], int] = OrderedDict()
        self._most = remembered
        self._say = say or _say_unsubscribed
        self._said = False  #: the subscription's refusal was said (once)
        self._sub: Subscription | None = None
        self._later: asyncio.TimerHandle | None = None  #: the second look for a refusal (:meth:`start`)
        self._look: asyncio.Future[bool] | None = None  #: that look under way
        #: since when (nats-server's clock, :func:`gamead_core.clock.now`) the advisories are heard: the subscription
        #: confirmed by its flush (None: not yet, or refused); a nak before it is not known here
        self.since: float | None = None

    async def start(self, nc: NATS, timeout: float = 2.0) -> None:
        """Subscribe to the nak advisories on ``nc``; ``timeout``: seconds the flush that tells a refusal waits
        (``nats.request_timeout``; no answer in time: taken as subscribed). Never raises: a subscription that fails
        or that nats-server refuses (:func:`refused`; then unsubscribed) is said once (``say``), and the worker
        judges redeliveries without them."""
        try:
            self._sub = sub = await subscribe_inline(nc, SUBJECT, self._on_advisory)
        except Exception as exc:  # noqa: BLE001 - a log line's evidence, not the worker's work
            self._say(error_text(exc))
            return
        with contextlib.suppress(Exception):  # a refusal's -ERR comes around the flush's PONG (the module doc)
            await flush_all(nc, timeout)
        self.since = clock.now()
        if not await self._refused(nc, sub):
            self._later = asyncio.get_running_loop().call_later(timeout, self._look_again, nc, sub)

    async def stop(self) -> None:
        """Unsubscribe, and look no more for a refusal (a worker's ends with its connection). Never raises."""
        sub, self._sub = self._sub, None
        if self._later is not None:
            self._later.cancel()
        if sub is not None:
            with contextlib.suppress(Exception):
                await unsubscribe_quietly(sub)

    def __len__(self) -> int:
        return len(self._last)

    async def _refused(self, nc: NATS, sub: Subscription) -> bool:
        """True (said, unsubscribed) if ``nc``'s last error is nats-server's refusal of ``sub`` (:func:`refused`)."""
        if self._said or not refused(nc.last_error):
            return self._said
        self._said, why, self.since, self._sub = True, str(nc.last_error), None, None
        await unsubscribe_quietly(sub)
        self._say(why)
        return True

    def _look_again(self, nc: NATS, sub: Subscription) -> None:
        self._look = asyncio.ensure_future(self._refused(nc, sub))  # kept: a task only weakly held is collected

    def note(self, stream: str, seq: int, count: int) -> None:
        """Remember that delivery ``count`` of message ``seq`` of ``stream`` was handed back (the newest first)."""
        key = (stream, seq)
        self._last.pop(key, None)
        self._last[key] = count
        while len(self._last) > self._most:
            self._last.popitem(last=False)

    def naked(self, stream: str, seq: int) -> int | None:
        """The delivery count of the last ``nak`` seen of message ``seq`` of ``stream``; None: none seen."""
        return self._last.get((stream, seq))

    def _on_advisory(self, msg: Msg) -> None:
        parsed = parse_nak(msg.subject, msg.data or b"")
        if parsed is not None:
            self.note(*parsed)


def refused(error: BaseException | None) -> bool:
    """Whether ``error`` (a connection's last error) is nats-server's refusal of a subscription to :data:`SUBJECT`
    (nats-py lowercases the ``-ERR`` text: ``nats: permissions violation for subscription to "$js.event…"``). Pure."""
    text = str(error).lower() if error is not None else ""
    return "permissions violation for subscription" in text and SUBJECT.lower() in text


def _say_unsubscribed(why: str) -> None:
    log.warning("could not subscribe to nats-server's nak advisories (%s): an ad another worker handed back may be "
                "called lost at its redelivery", why, extra={"subject": SUBJECT})


__all__ = ["MAX_BYTES", "REMEMBERED", "SUBJECT", "NaksSeen", "parse_nak", "refused"]
