"""What JetStream's answer to a compare-and-set write means: lost (decided), busy (not decided) or neither. The
one classification every compare-and-set writer uses: the records' (:mod:`gamead_core.store.cas`), the leases',
the scale override's and hold keys', the DLQ's, the jobs' and the NATS error boundary
(:func:`gamead_core.queue.connection.translate`).

A write carrying ``Nats-Expected-Last-Subject-Sequence: N`` (ADR-8; nats-py's ``kv.update(last=N)``,
``kv.create``, ``kv.delete(last=N)``) is refused in two different ways (nats-server
``server/jetstream_batching.go`` ``checkMsgHeadersPreClusteredProposal`` and ``server/stream.go``, read at
2.14/2.15; ``server/errors.json``):

* **lost** (:data:`LOST`): 10071 ``wrong last sequence: {seq}``: the key's last write is ``seq``, not ``N``; someone
  else changed it. Decided: the write never lands;
* **busy** (:data:`BUSY`): 10164 ``wrong last sequence`` (no number): on a replicated stream (R3) another write of
  the same key was proposed and is not applied yet ("subject already in process", since nats-server 2.11.0), or
  10163 ``expected last sequence per subject temporarily unavailable`` (2.11's pre-releases). Not decided: the
  write in flight may yet land or be dropped with a leader change. nats-py 2.16's ``kv.update``/``kv.create`` fold
  both into ``KeyWrongLastSequenceError`` without the code: its description tells them apart (the number);
  ``kv.delete`` and ``js.publish`` raise the ``APIError`` with its code.

Before fix35d item 1 only the records' writers told them apart: the autoscaler's lease keeper read a busy renewal
as lost and gave its lease up, an operator's ``gamead scale`` override was refused 409 "another operator changed
it", ``gamead doctor --repair`` left a stuck lease unreleased, the boundary turned every 10164 into ``Conflict``.
"""

from __future__ import annotations

import re
from typing import Final

import nats.js.errors

from gamead_core.errors import QueueUnavailable

LOST: Final = "lost"  #: someone else changed the key: the write never lands (decided)
BUSY: Final = "busy"  #: another write of the key is in flight: not decided (read again, try again)
WRONG_LAST_SEQUENCE: Final = 10071  #: "wrong last sequence: {seq}": lost
WRONG_LAST_SEQUENCE_CONSTANT: Final = 10164  #: "wrong last sequence": the key in process (nats-server >= 2.11.0)
NOT_READY: Final = 10163  #: "expected last sequence per subject temporarily unavailable" (2.11 pre-releases)
_NUMBERED = re.compile(r"wrong last sequence: \d+")


class StillBusy(QueueUnavailable):
    """A compare-and-set still answered busy after it was sent again (:func:`gamead_core.store.cas.retry_busy`):
    not decided, as an unanswered write; read the key again later. Never a lost race (:class:`Conflict`)."""


def verdict(exc: object) -> str | None:
    """:data:`LOST`, :data:`BUSY` or None (not a compare-and-set refusal) for the answer ``exc`` of a write with an
    expected last subject sequence: a nats-py ``APIError`` (its ``err_code``), or nats-py's
    ``KeyWrongLastSequenceError`` without one (its description: ``wrong last sequence: 7`` lost, ``wrong last
    sequence`` busy). Pure; the rule and its source: the module doc."""
    if not isinstance(exc, nats.js.errors.APIError):
        return None
    code = getattr(exc, "err_code", None)
    if code == WRONG_LAST_SEQUENCE:
        return LOST
    if code in (WRONG_LAST_SEQUENCE_CONSTANT, NOT_READY):
        return BUSY
    if code is None and isinstance(exc, nats.js.errors.KeyWrongLastSequenceError):
        return LOST if _NUMBERED.search(exc.description or "") else BUSY
    return None


def still_busy(exc: BaseException, tries: int) -> StillBusy:
    """The :class:`StillBusy` of a write answered busy (``exc``) ``tries`` times."""
    return StillBusy(f"another write of the key was still in flight after {tries} tries "
                     f"({getattr(exc, 'description', None) or exc!r}): not decided, read it again")


def lost_at(seq: int) -> nats.js.errors.APIError:
    """The answer of a write found lost on a re-read (the key's last write is ``seq``), as JetStream words it."""
    return nats.js.errors.APIError(code=400, err_code=WRONG_LAST_SEQUENCE, description=f"wrong last sequence: {seq}")


__all__ = ["BUSY", "LOST", "NOT_READY", "StillBusy", "WRONG_LAST_SEQUENCE", "WRONG_LAST_SEQUENCE_CONSTANT",
           "lost_at", "still_busy", "verdict"]
