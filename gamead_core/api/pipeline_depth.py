"""Bounded pipelining for ``gamead serve``: whatever a client sends, and however little of the answers it reads, a
connection holds at most :data:`MAX_QUEUED` requests parsed and not yet started, a queued request's body up to
uvicorn's ``HIGH_WATER_LIMIT`` (64 KiB), and the unparsed rest of one socket read (at most 256 KiB).

Why (attack44 F5): uvicorn's httptools protocol pauses reading when a request comes pipelined behind one still
being answered, but resumes it after every answer (``on_response_complete``) and whenever an application waits in
``receive``, and parses each read whole (up to 256 KiB: ~7,500 36-byte ``GET``\\ s) into its queue (``pipeline``),
~1 KB a request (its cycle, scope, headers, event). One socket pipelining ``GET /v1/stats`` for 25 s without reading
its answers had ~260,000 requests queued: the API grew ~270 MB per such connection, kept it after they closed, and
another client's ``/healthz`` waited 1-3 s while reads were parsed whole.

How: a read is parsed :data:`FEED_SLICE` bytes at a time; once the queue is full (:meth:`BoundedPipeline.backlogged`)
the rest of the read is kept as bytes, reading is paused and stays so (``HeldFlow``'s ``may_read``, asked
whenever uvicorn resumes reading: :mod:`gamead_core.api.refusal_order`), and each answer completed parses more of the
kept bytes; reading resumes once all are parsed and the queue has room again. The client's unread bytes wait in
its socket (TCP pushes back on it), not in the API. While reading is paused the read deadline stops (as for any
pause of the server's own). A refusal parsed from kept bytes is answered as from a read (in order), and the bytes
after it are dropped, as a lingering close drops what comes after a refusal.

The answers a client does not read are bounded apart: uvicorn's ``send`` waits in ``drain`` while the transport
holds more than its high-water mark (64 KiB), so a stalled connection has at most that plus the one answer being
written, until ``api.write_timeout`` or ``api.max_unsent_bytes`` cuts it (:mod:`gamead_core.api.write_watch`).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.flow_control import HIGH_WATER_LIMIT

#: requests parsed and queued behind the one being answered, at most, before reading stops (a pipelining client's
#: depth; a browser never pipelines, curl and httpx do not either)
MAX_QUEUED = 32
#: bytes of a read parsed at a time (~110 36-byte GETs: what the queue may overshoot by in one slice)
FEED_SLICE = 4096


class BoundedPipeline:
    """Base before :class:`~gamead_core.api.http_limits.BoundedHttpToolsProtocol` in the bases of ``gamead serve``'s
    protocol: a read parsed in slices while the pipelining queue has room, the rest kept until answers make room
    (module docstring)."""

    pipeline: Any  #: uvicorn's queue of parsed requests not yet started (newest first)
    cycle: Any
    transport: Any
    flow: Any
    _lingering: bool
    _held: Any

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: the unparsed rest of a read, kept while the queue is full (reading paused); a view: no copy per slice
        self._kept = memoryview(b"")

    def backlogged(self) -> bool:
        """Whether nothing more may be parsed now: :data:`MAX_QUEUED` requests wait behind the one being answered,
        or the newest request is queued (not started) with more than ``HIGH_WATER_LIMIT`` bytes of body buffered."""
        pipeline = self.pipeline
        if len(pipeline) >= MAX_QUEUED:
            return True
        cycle = self.cycle
        return bool(pipeline) and pipeline[0][0] is cycle and len(cycle.body) > HIGH_WATER_LIMIT

    def may_read(self) -> bool:
        """Whether reading may resume (``HeldFlow`` asks): nothing kept unparsed and room in the queue; always while
        lingering after a refusal (what comes is read and dropped)."""
        return self._lingering or (not self._kept and not self.backlogged())

    def data_received(self, data: bytes) -> None:
        if self._kept:  # a transport that delivers while paused (none of asyncio's or uvloop's): keep it in order
            self._kept = memoryview(bytes(self._kept) + data)
            return
        if len(data) <= FEED_SLICE:  # the common read: one slice
            super().data_received(data)  # type: ignore[misc]
        else:
            self._feed(memoryview(data))
        if self._kept or self.backlogged():
            self.flow.pause_reading()

    def _feed(self, data: memoryview) -> None:
        """Parse ``data`` slice by slice until it is all parsed, the queue is full (the rest kept in ``_kept``) or
        the connection was refused or is closing (the rest dropped)."""
        start = 0
        while start < len(data):
            if self._lingering or self._held is not None or self.transport.is_closing():
                break  # refused or closing: nothing after is parsed (the refusal's own rule)
            if self.backlogged():
                self._kept = data[start:]
                return
            super().data_received(bytes(data[start:start + FEED_SLICE]))  # type: ignore[misc]
            start += FEED_SLICE
        self._kept = memoryview(b"")

    def on_response_complete(self) -> None:
        super().on_response_complete()  # type: ignore[misc]  # starts the next queued request: room for one more
        if self.transport.is_closing():
            return
        if self._kept:
            self._feed(self._kept)
        self.flow.resume_reading()  # if may_read: uvicorn's own resume came before the room was made

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)  # type: ignore[misc]
        self.flow.may_read = self.may_read

    def connection_lost(self, exc: Exception | None) -> None:
        self._kept = memoryview(b"")
        super().connection_lost(exc)  # type: ignore[misc]
