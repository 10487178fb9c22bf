"""The doctor's reading: everything it looks at, read the cheapest way the server offers. NATS errors leave as
gamead errors (``nats_boundary``).

* **Listings without bodies.** The record bucket is read with a pull consumer (bounded bytes in flight:
  :mod:`gamead_core.queue.pull_feed`) that delivers *headers only* (``headers_only``: subject, headers, the stream
  sequence and time in the reply subject; the body stays on the server): a key and "final or not" (the ``Nats-TTL``
  header of completed and failed records) per record, about 200 bytes instead of the whole record (~0.5-3 KB).
* **Batched direct gets.** The work stream is a work-queue stream, which refuses a consumer beside the level
  consumers, so its waiting ads are read 1,000 at a time with batched direct gets (bodies included: a
  waiting ad's record, ~0.5 KB) (:func:`list_messages`).
* **Per-subject counts.** The DLQ has one subject per ad, so ``STREAM.INFO`` with ``subjects_filter`` lists
  which ads have entries, and how many, 100,000 subjects per call (:func:`subject_counts`).
* **Direct gets** for the few whole records the rules need (:func:`gamead_core.doctor.records.read_facts`,
  ``doctor.concurrency`` in flight, each reduced to its facts as it arrives).

Every listing stops at a :class:`ReadBudget` (seconds for the whole run, messages per stream) and says so:
the report is then partial and its counts are lower bounds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import nats.errors
import nats.js.errors
import orjson
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import DEFAULT_PREFIX, ConsumerConfig, DeliverPolicy

from gamead_core import names
from gamead_core.doctor.model import ReadStats
from gamead_core.errors import TopologyMissing
from gamead_core.queue.connection import nats_boundary
from gamead_core.queue.pull_feed import pull_feed
from gamead_core.queue.read_end import opened, unsubscribe_quietly
from gamead_core.queue.scan import follow_bound

#: A listing that receives nothing for this long (seconds) stops and says so (a server or network stall).
IDLE = 5.0
#: Headers of a record message that is not a value: a KV delete/purge marker, a server's TTL/limit marker.
_MARKERS = (names.HDR_KV_OPERATION, names.HDR_MARKER_REASON)
#: Header JetStream sets on a headers-only delivery: the size of the body it left out.
MSG_SIZE = "Nats-Msg-Size"
#: Header of a message written with a per-message TTL (ADR-43): completed and failed records carry it.
TTL = "Nats-TTL"


@dataclass
class ReadBudget:
    """What one run may read: until ``deadline`` (monotonic seconds) and ``limit`` messages per listing.
    ``partial`` collects why a listing stopped early."""

    deadline: float
    limit: int
    partial: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, seconds: float, limit: int) -> ReadBudget:
        return cls(time.monotonic() + seconds, limit)

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def stop(self, why: str) -> None:
        if why not in self.partial:
            self.partial.append(why)


def reply_fields(reply: str | None) -> tuple[int, float, int] | None:
    """``(stream seq, time in epoch seconds, pending)`` from a JetStream delivery's reply subject
    (``$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ns>.<pending>``, or the form with domain and
    account hash of ADR-15); None if it is not one. Pure; cheaper than nats-py's ``msg.metadata``."""
    if not reply:
        return None
    tokens = reply.split(".")
    n = len(tokens)
    if n == 9:
        i = 5
    elif n >= 11:
        i = 7
    else:
        return None
    try:
        return int(tokens[i]), int(tokens[i + 2]) / 1e9, int(tokens[i + 3])
    except ValueError:
        return None


OnMessage = Callable[[str, dict[str, str] | None, int, float], None]


async def _span(js: JetStreamContext, stream: str, start_seq: int | None, stats: ReadStats) -> tuple[Any, int, int]:
    """``stream``'s info and the first and last sequence to read from ``start_seq`` (first > last: nothing to
    read). One API call. Raises :class:`TopologyMissing` if the stream is missing."""
    with nats_boundary():
        try:
            info = await js.stream_info(stream)
        except nats.js.errors.NotFoundError as exc:
            raise TopologyMissing(f"stream {stream} is missing") from exc
    stats.api_calls += 1
    last = int(info.state.last_seq or 0)
    start = max(int(info.state.first_seq or 1), start_seq or 1)
    return info, (start if info.state.messages else last + 1), last


async def scan_headers(js: JetStreamContext, stream: str, subject: str, *, on_msg: OnMessage, budget: ReadBudget,
                       stats: ReadStats, what: str, start_seq: int | None = None, follow: bool = False) -> int:
    """Call ``on_msg(subject, headers, stream seq, time)`` for every message of ``stream`` on ``subject`` from
    ``start_seq`` to the stream's end as it was when the call started (bodies are not read); with ``follow`` (a KV
    bucket, one revision per key), to its end as it is when the read gets there, at most
    :func:`~gamead_core.queue.scan.follow_bound` messages past the first end (more: ``budget.partial`` says the
    bucket changed faster than it was read): a key rewritten ahead of the read moves past the first end and would
    not be read at all (doctor36), so a key can come twice, its older value first (the caller keeps the last).
    Returns the last sequence covered: the stream's last sequence at the start (with ``follow``, the last one
    read) when it read everything, else the last one it read (and ``budget.partial`` says why it stopped). Raises
    :class:`TopologyMissing` if the stream is missing."""
    info, start, last = await _span(js, stream, start_seq, stats)
    if start > last:
        return last
    stops = len(budget.partial)
    state = {"read": 0, "seq": start - 1, "past": 0}
    extra = follow_bound(last - start + 1) if follow else 0

    def collect(msg: Msg) -> bool:
        """Take one message; True when the listing is done."""
        parsed = reply_fields(msg.reply)
        if parsed is None:
            meta = msg.metadata
            parsed = (meta.sequence.stream, meta.timestamp.timestamp(), meta.num_pending)
        seq, at, pending = parsed
        state["read"] += 1
        state["seq"] = seq
        state["past"] += seq > last
        on_msg(msg.subject, msg.headers, seq, at)
        if pending == 0 or (seq >= last and not follow):
            return True
        if state["past"] > extra:
            budget.stop(f"{what}: the store changed faster than it was read ({state['past']} writes read past its "
                        f"end at the start, {pending} more pending): what changed meanwhile is not judged")
            return True
        if state["read"] >= budget.limit:
            budget.stop(f"{what}: read {state['read']} messages, the limit (doctor.scan_limit)")
            return True
        return False

    with nats_boundary():  # a pull feed: bounded bytes in flight on the connection (pull_feed, left39a)
        sub = await opened(pull_feed(js, subject, stream=stream,
                                     config=ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                                                           opt_start_seq=start, headers_only=True)))
    stats.api_calls += 1
    try:
        idle_since, done = time.monotonic(), False
        while not done:
            wait = min(budget.left(), 0.5)
            if wait <= 0:
                budget.stop(f"{what}: stopped after {state['read']} messages at doctor.scan_time")
                break
            try:
                msg = await sub.next_msg(wait)
            except nats.errors.TimeoutError:
                if sub.ended:  # (pullfeed60: it said "no message for 10 s" of a read that had ended at once)
                    budget.stop(f"{what}: its read ended after {state['read']} ({sub.why()})")
                    break
                if time.monotonic() - idle_since > IDLE:
                    budget.stop(f"{what}: no message for {IDLE:g} s after {state['read']} ({sub.why()})")
                    break
                continue
            idle_since = time.monotonic()
            done = collect(msg)
            if state["read"] % 256 == 0:
                await asyncio.sleep(0)  # messages already in the feed are read without a wait: let others run
    finally:
        await unsubscribe_quietly(sub)
    return max(last, state["seq"]) if len(budget.partial) == stops else state["seq"]


def _epoch(stamp: str | None) -> float:
    """``2026-11-30T03:57:19.225513649Z`` (RFC 3339, nanoseconds) → epoch seconds; 0.0 if unreadable. Pure."""
    if not stamp:
        return 0.0
    text = stamp.rstrip("Z")
    base, _, frac = text.partition(".")
    try:
        return datetime.fromisoformat(f"{base}.{(frac + '000000')[:6]}+00:00").timestamp()
    except ValueError:
        return 0.0


#: Messages per batched direct get (ADR-31, nats-server ≥ 2.11).
DIRECT_BATCH = 1000
#: Walkers that list a stream without direct gets in parallel, each over its own slice of sequences.
WALKERS = 8


async def list_messages(nc: NATS, js: JetStreamContext, stream: str, subject: str, *, on_msg: OnMessage,
                        budget: ReadBudget, stats: ReadStats, what: str, timeout: float,
                        start_seq: int | None = None) -> int:
    """Like :func:`scan_headers`, for a stream that refuses an ordered consumer (a work-queue stream): batched
    direct gets of :data:`DIRECT_BATCH` messages (``$JS.API.DIRECT.GET``, ``next_by_subj``, ``batch``: one API
    call per batch, bodies included) when the stream allows direct gets, else ``STREAM.MSG.GET`` with
    ``next_by_subj`` (one call per message, :data:`WALKERS` slices in parallel). Returns the last sequence
    covered. Raises :class:`TopologyMissing` if the stream is missing."""
    info, start, last = await _span(js, stream, start_seq, stats)
    if start > last:
        return last
    if info.config.allow_direct:
        return await _list_direct(nc, stream, subject, start, last, on_msg=on_msg, budget=budget, stats=stats,
                                  what=what, timeout=timeout)
    return await _list_walking(js, stream, subject, start, last, on_msg=on_msg, budget=budget, stats=stats,
                               what=what)


async def _list_direct(nc: NATS, stream: str, subject: str, start: int, last: int, *, on_msg: OnMessage,
                       budget: ReadBudget, stats: ReadStats, what: str, timeout: float) -> int:
    inbox, stops = nc.new_inbox(), len(budget.partial)
    batch_done = asyncio.Event()
    state: dict[str, Any] = {"seq": start - 1, "read": 0, "status": None, "pending": None}

    async def collect(msg: Msg) -> None:
        headers = msg.headers or {}
        status = headers.get(names.HDR_STATUS)
        if status:  # 204 EOB ends a batch; 404 no more messages; anything else is an error
            state["status"] = status
            batch_done.set()
            return
        seq = int(headers.get("Nats-Sequence", 0) or 0)
        state["seq"], state["read"] = seq, state["read"] + 1
        state["pending"] = int(headers.get("Nats-Num-Pending", 1) or 0)
        on_msg(headers.get("Nats-Subject", ""), headers, seq, _epoch(headers.get("Nats-Time-Stamp")))

    with nats_boundary():
        sub = await nc.subscribe(inbox, cb=collect)
    try:
        while state["seq"] < last:
            if budget.left() <= 0:
                budget.stop(f"{what}: stopped after {state['read']} messages at doctor.scan_time")
                break
            if state["read"] >= budget.limit:
                budget.stop(f"{what}: read {state['read']} messages, the limit (doctor.scan_limit)")
                break
            batch_done.clear()
            state["status"] = None
            request = {"seq": state["seq"] + 1, "next_by_subj": subject,
                       "batch": min(DIRECT_BATCH, budget.limit - state["read"])}
            with nats_boundary():
                await nc.publish(f"{DEFAULT_PREFIX}.DIRECT.GET.{stream}", orjson.dumps(request), reply=inbox)
            stats.api_calls += 1
            try:
                await asyncio.wait_for(batch_done.wait(), min(timeout, max(0.1, budget.left())))
            except asyncio.TimeoutError:
                budget.stop(f"{what}: a batch of messages did not arrive within {timeout:g} s")
                break
            if state["status"] not in ("204", "404"):  # an error, not an end: the rest is not read (doctor36)
                budget.stop(f"{what}: a batch was answered with status {state['status']} after {state['read']} "
                            "messages")
                break
            if state["status"] == "404" or state["pending"] == 0:
                break  # 404: nothing after this sequence
    finally:
        await unsubscribe_quietly(sub)
    return last if len(budget.partial) == stops or state["seq"] >= last else state["seq"]


async def _list_walking(js: JetStreamContext, stream: str, subject: str, start: int, last: int, *,
                        on_msg: OnMessage, budget: ReadBudget, stats: ReadStats, what: str) -> int:
    read = 0
    stopped = False
    span = max(1, (last - start + WALKERS) // WALKERS)

    async def walk(lo: int, hi: int) -> None:
        nonlocal read, stopped
        seq = lo
        while seq <= hi and not stopped:
            if budget.left() <= 0 or read >= budget.limit:
                stopped = True
                budget.stop(f"{what}: stopped after {read} messages (doctor.scan_time / doctor.scan_limit)")
                return
            stats.api_calls += 1
            with nats_boundary():
                try:
                    raw = await js.get_msg(stream, seq=seq, subject=subject, next=True)
                except nats.js.errors.NotFoundError:
                    return
            if not raw.seq or raw.seq > hi:
                return
            read += 1
            on_msg(raw.subject or "", raw.headers, raw.seq, raw.time.timestamp() if raw.time else 0.0)
            seq = raw.seq + 1

    await asyncio.gather(*(walk(lo, min(last, lo + span - 1)) for lo in range(start, last + 1, span)))
    return start - 1 if stopped else last  # stopped: its slices were read in part, so none of it is "covered"


async def subject_counts(nc: NATS, stream: str, subjects: str, *, timeout: float, stats: ReadStats) -> dict[str, int]:
    """Messages per subject of ``stream`` matching ``subjects`` (``STREAM.INFO`` with ``subjects_filter``,
    100,000 subjects a page). Raises :class:`TopologyMissing` if the stream is missing."""
    out: dict[str, int] = {}
    offset = 0
    while True:
        payload = orjson.dumps({"subjects_filter": subjects, "offset": offset})
        with nats_boundary():
            msg = await nc.request(f"{DEFAULT_PREFIX}.STREAM.INFO.{stream}", payload, timeout=timeout)
            body = orjson.loads(msg.data)
            if "error" in body:
                try:
                    nats.js.errors.APIError.from_error(body["error"])
                except nats.js.errors.NotFoundError as exc:
                    raise TopologyMissing(f"stream {stream} is missing") from exc
        stats.api_calls += 1
        page = (body.get("state") or {}).get("subjects") or {}
        out.update(page)
        offset += len(page)
        if not page or offset >= int(body.get("total") or 0):
            return out


__all__ = ["IDLE", "MSG_SIZE", "TTL", "ReadBudget", "list_messages", "reply_fields", "scan_headers",
           "subject_counts"]
