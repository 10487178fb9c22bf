"""The deliveries the workers announce holding, keyed by the message each one is a delivery of, for the doctor's
``ack_pending_unheld`` check (:mod:`gamead_core.doctor.unheld`).

A key is ``(stream, consumer, stream sequence)``, read from the delivery's ack subject: the message JetStream counts
ack pending on that consumer, whichever delivery of it a worker holds. :class:`Announced` hears every registry entry
put while it listens (a plain subscription to the registry's subjects: a worker's held-ads announcement is a publish
there, :meth:`gamead_core.registry.Registry.put_raw_nowait`; and what it handed back lately, ``handedBack``:
:func:`handed_keys`), so a delivery a live worker received just before the
consumer infos were read, announced after the listing before them and settled before the listing after them (a
short ad under a steady flow) is seen held too; probe49 F3: at 100 ads/s on a loaded machine, 2 to 6 such
deliveries a run were said to be a dead worker's.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

import orjson
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from gamead_core.queue.flush_all import flush_all
from gamead_core.queue.inline_sub import subscribe_inline
from gamead_core.queue.read_end import unsubscribe_quietly

log = logging.getLogger(__name__)

#: (stream, consumer, stream sequence) of a held delivery's message; ``("", ad id, 0)`` for an ack subject that is not
#: a JetStream one (counted held, as before keys: the check may only undercount)
HeldKey = tuple[str, str, int]


def held_key(ack_subject: str | None, ad_id: str, delivery: str) -> HeldKey:
    """The key of a held delivery from its ack subject (``$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.…``, or
    the form with domain and account hash of ADR-15). Pure."""
    tokens = (ack_subject or "").split(".")
    i = 2 if len(tokens) == 9 else 4 if len(tokens) >= 11 else -1
    if i >= 0 and tokens[0] == "$JS" and tokens[1] == "ACK":
        try:
            return tokens[i], tokens[i + 1], int(tokens[i + 3])
        except ValueError:
            pass
    return "", f"{ad_id}/{delivery}", 0


def keys_of(holding: Iterable[object]) -> set[HeldKey]:
    """The keys of an entry's ``holding`` as JSON (each ``{"adId", "delivery", "ackSubject"}``); pure."""
    keys: set[HeldKey] = set()
    for held in holding:
        if isinstance(held, dict):
            keys.add(held_key(str(held.get("ackSubject") or ""), str(held.get("adId")), str(held.get("delivery"))))
    return keys


def handed_keys(handed_back: Mapping[str, object]) -> set[HeldKey]:
    """The keys of an entry's ``handedBack`` (``<stream>.<consumer>`` → stream sequences: the deliveries a live worker
    handed back lately, ack pending until a pull takes them again, :mod:`gamead_core.worker.handed`); pure. Anything
    else in it (an unknown shape from a newer worker) is skipped: the check may only overcount, as before the field."""
    keys: set[HeldKey] = set()
    for where, seqs in handed_back.items():
        stream, dot, consumer = str(where).partition(".")
        if dot and stream and consumer and isinstance(seqs, list):
            keys.update((stream, consumer, seq) for seq in seqs if type(seq) is int)
    return keys


def pending_then(key: HeldKey, delivered: dict[tuple[str, str], int]) -> bool:
    """Whether ``key`` may have been ack pending when the consumer infos were read (``delivered``: (stream, consumer)
    → the last stream sequence its consumer had delivered then): not a message delivered only later. Pure."""
    stream, consumer, seq = key
    if not stream:
        return True
    last = delivered.get((stream, consumer))
    return last is not None and seq <= last


class Announced:
    """Every delivery a worker announced holding while :meth:`start` … :meth:`stop` listened to the registry."""

    def __init__(self, nc: NATS, prefix: str) -> None:
        self._nc, self._prefix = nc, prefix
        self._sub: Subscription | None = None
        self.seen: set[HeldKey] = set()
        self.handed: set[HeldKey] = set()  #: and every delivery a worker announced having handed back lately

    async def start(self, timeout: float) -> bool:
        """Listen (the server has the subscription once this returns True); False when NATS did not confirm it
        within ``timeout`` s (then nothing is heard: the check counts the listings only, as before)."""
        try:
            self._sub = await subscribe_inline(self._nc, f"{self._prefix}>", self._heard)
            await flush_all(self._nc, timeout)  # its PING after the SUB (nc.flush's went ahead: flakes51B)
        except Exception as exc:  # noqa: BLE001 - a doctor's extra look: without it the listings still count
            log.debug("doctor: registry announcements not heard: %r", exc)
            await self.stop()
            return False
        return True

    def _heard(self, msg: Msg) -> None:
        if not msg.data:  # a delete or purge marker
            return
        try:
            doc = orjson.loads(msg.data)
        except orjson.JSONDecodeError:
            return
        if isinstance(doc, dict) and doc.get("role") == "worker" and isinstance(doc.get("holding"), list):
            self.seen |= keys_of(doc["holding"])
            if isinstance(back := doc.get("handedBack"), dict):
                self.handed |= handed_keys(back)

    async def stop(self) -> None:
        sub, self._sub = self._sub, None
        if sub is not None:
            await unsubscribe_quietly(sub)


__all__ = ["Announced", "HeldKey", "handed_keys", "held_key", "keys_of", "pending_then"]
