"""The HTTP/1.1 protocol class ``gamead serve`` gives uvicorn (``uvicorn.Config(http=...)``): uvicorn's httptools
protocol with bounded framing (:mod:`gamead_core.api.http_limits`), a bound on open connections
(:mod:`gamead_core.api.conn_cap`), a response's head and body sent as one
write (:mod:`gamead_core.api.turn_writes`), no connection closed for time or by the stop with a request unread in
it (:mod:`gamead_core.api.read_first`), an answer written after the client's half-close
(:mod:`gamead_core.api.half_close`) and a bounded pipelining depth (:mod:`gamead_core.api.pipeline_depth`)."""

from __future__ import annotations

from gamead_core.api.conn_cap import CappedConnections
from gamead_core.api.half_close import AnswersAfterHalfClose
from gamead_core.api.http_limits import BoundedHttpToolsProtocol, HttpLimits
from gamead_core.api.pipeline_depth import BoundedPipeline
from gamead_core.api.read_first import ReadsBeforeClosing
from gamead_core.api.turn_writes import OneWritePerTurnProtocol


def bounded_protocol(limits: HttpLimits) -> type[BoundedHttpToolsProtocol]:
    """A protocol class with :class:`BoundedHttpToolsProtocol`'s ``limits`` that writes each loop turn's answer
    as one write (:class:`OneWritePerTurnProtocol`) and reads what came before it closes for time or for the stop
    (:class:`ReadsBeforeClosing`), answering after a half-close (:class:`AnswersAfterHalfClose`), parsing no more
    than :class:`BoundedPipeline` lets a client queue, for
    ``uvicorn.Config(http=...)``; with ``limits.max_connections``, one that keeps
    at most that many connections open (:class:`CappedConnections`)."""
    base = CappedConnections if limits.max_connections else BoundedHttpToolsProtocol
    return type("BoundedHttpToolsProtocol", (BoundedPipeline, OneWritePerTurnProtocol, ReadsBeforeClosing,
                                             AnswersAfterHalfClose, base), {"limits": limits})
