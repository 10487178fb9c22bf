"""Settling a record create that got no answer (:func:`withdraw_creates`): it is deleted only while it is still
exactly as this API wrote it, by compare-and-set on its revision (ADR-8), never blindly.

Why (attack33b F1): an API whose NATS→API direction stalls gets no acks while its writes land, answers 503 "may be
queued", and sends no heartbeat; after ``registry.ttl`` the reaper (:mod:`gamead_core.worker.orphans`) takes it for
dead and queues its records without a message, workers analyse them, and then the live API's settling used to send a
delete marker whatever the revision: a completed record deleted, ``GET /ads/ID`` 404, the client told "not queued:
safe to resend" for an ad that was analysed (800 of 1,300 in the drill). Now two parties settle such a create, and
exactly one wins, whatever the timing, because each writes by compare-and-set over the revision it read:

* the API (here) reads the key's last message from the stream leader: nothing there → a delete marker expecting
  the key empty (sequence 0); the create carrying this API's ``Gamead-Origin`` → a delete marker expecting its
  revision; a delete marker (its own earlier one whose ack was lost, or anyone's) → settled, nothing runs; anything
  else (the reaper's re-put, a worker's write) → :data:`OWNED`: someone else owns the ad, it is queued;
* the reaper, before it publishes a message for a record without one, re-puts the record unchanged by
  compare-and-set over the revision it read (a write without ``Gamead-Origin``) and publishes only if that won,
  the message naming the new revision.

The interleavings: the API's marker first → the reaper's compare-and-set loses (or its read finds the marker) and
it publishes nothing: 404, never analysed. The reaper's re-put first → the API's marker loses; it reads again, finds
a write not its own: :data:`OWNED` (the ad runs; GET finds it queued, then completed). A worker's write (after the
reaper's message) is the same. The API's create landing late, after its marker expecting an empty key → the
create-only put is refused (its own compare-and-set, sequence 0): nothing is created. The marker expecting an empty
key landing after the create → it loses, the next round reads the create and deletes it at its revision (or finds
the reaper's re-put). A keyed submit is not settled here (its message goes first; a worker creates a record that
is not written yet; the reaper never queues keyed records). A lost compare-and-set is not settled in the round: the
next round reads again; a busy one (another write of the key in flight) is tried again
first (:func:`gamead_core.store.cas.publish_cas`). Reads and markers pipelined: a read each (concurrent), the
markers sent back to back.
"""

from __future__ import annotations

import asyncio
from typing import Final

import nats.js.errors
from nats.js.api import RawStreamMsg

from gamead_core import names
from gamead_core.errors import GameadError, QueueUnavailable
from gamead_core.models import AdStatus
from gamead_core.queue.acks import Ack
from gamead_core.queue.connection import JS_NO_MESSAGE_FOUND, nats_boundary, translate
from gamead_core.store import cas
from gamead_core.store.ads import AdStore, decode, write_headers

WITHDRAWN: Final = "withdrawn"  #: the record is deleted (or never will be created): nothing runs, GET says 404
OWNED: Final = "owned"  #: the record was written since by another (the reaper's re-put, a worker): the ad is queued


def decide(last: RawStreamMsg | None, origin: str | None) -> int | str:
    """What settles a create of this API (``origin``: its ``Gamead-Origin``, :attr:`AdStore.origin`) whose ack did
    not come, given ``last``, the key's last message in the records' stream (None: the key has none). An int: the
    revision a delete marker must expect (0: the key empty, so the create, landing later, is refused; a store without
    an origin: a create without one, still ``queued`` and untouched); else
    :data:`WITHDRAWN` (a delete, purge or expiry marker is the key's last word) or :data:`OWNED` (the record is
    someone else's write: the reaper queued it again, taking this API for dead). Pure."""
    if last is None:
        return 0
    headers = last.headers or {}
    if headers.get(names.HDR_KV_OPERATION) in ("DEL", "PURGE") or headers.get(names.HDR_MARKER_REASON):
        return WITHDRAWN
    if last.data and headers.get(names.HDR_ORIGIN) == origin and (origin is not None or _untouched(last.data)):
        return last.seq or 0  # our create, untouched: every other write of the key carries no origin of ours
    return OWNED


def _untouched(data: bytes) -> bool:
    """True if ``data`` is a ``queued`` record no worker has charged or started (a store without an origin, whose
    creates carry none, tells its create from a worker's write by the body; the reaper never re-puts them). Pure."""
    try:
        record = decode(data)
    except ValueError:
        return False
    return record.status == AdStatus.QUEUED and not record.attempts and not record.delivery


async def _last(store: AdStore, ad_id: str) -> RawStreamMsg | None:
    """The last message of ``ad_id``'s key, read from the stream leader; None if it has none. Raises nats-py's
    errors (a timeout: the read did not come back)."""
    try:
        return await store.js.get_last_msg(names.ADS_BUCKET_STREAM, names.kv_subject(names.ADS_BUCKET, ad_id))
    except nats.js.errors.NotFoundError as exc:
        if getattr(exc, "err_code", None) == JS_NO_MESSAGE_FOUND:
            return None
        raise


def _error(exc: BaseException) -> GameadError:
    out = translate(exc)
    return out if isinstance(out, GameadError) else QueueUnavailable(f"settling a record create failed: {out!r}")


async def withdraw_creates(store: AdStore, ad_ids: list[str]) -> list[str | GameadError]:
    """Settle the creates of ``ad_ids`` (fresh ids, each create unanswered) as the module doc says: one result per id,
    in order: :data:`WITHDRAWN`, :data:`OWNED`, or the gamead error of a read or marker that failed or of a
    compare-and-set that lost (not settled: read again next round). Raises a gamead error only if nothing could be
    sent (:func:`nats_boundary`)."""
    reads = await asyncio.gather(*(_last(store, ad_id) for ad_id in ad_ids), return_exceptions=True)
    results: list[str | GameadError] = []
    markers: list[tuple[int, str, int]] = []  # (index in results, ad id, expected revision)
    for ad_id, read in zip(ad_ids, reads, strict=True):
        if isinstance(read, BaseException):
            if isinstance(read, asyncio.CancelledError):
                raise read
            results.append(_error(read))
            continue
        verdict = decide(read, store.origin)
        if isinstance(verdict, int):
            markers.append((len(results), ad_id, verdict))
        results.append(verdict)  # type: ignore[arg-type]  # an int is replaced below
    if not markers:
        return results
    with nats_boundary():
        answers = await cas.publish_cas(store.js, [
            (names.kv_subject(names.ADS_BUCKET, ad_id), b"", write_headers(revision, store.final_ttl, delete=True,
                                                                        origin=store.origin or "api"))
            for _, ad_id, revision in markers], timeout=store.timeout)
    for (i, ad_id, revision), answer in zip(markers, answers, strict=True):
        if isinstance(answer, Ack):
            results[i] = WITHDRAWN
        elif (why := cas.verdict(answer)) is not None:  # lost: changed since; busy: not decided after its tries
            state = "changed since" if why == cas.LOST else "still busy at"
            results[i] = QueueUnavailable(f"the record of ad {ad_id} {state} revision {revision}: read again")
        else:
            results[i] = _error(answer)
    return results


__all__ = ["OWNED", "WITHDRAWN", "decide", "withdraw_creates"]
