"""The HTTP/1.1 protocol class ``gamead serve`` gives uvicorn (``uvicorn.Config(http=...)``): uvicorn's httptools
protocol with bounded framing (:mod:`gamead_core.api.http_limits`) and a response's head and body sent as one
write (:mod:`gamead_core.api.turn_writes`)."""

from __future__ import annotations

from gamead_core.api.http_limits import BoundedHttpToolsProtocol, HttpLimits
from gamead_core.api.turn_writes import OneWritePerTurnProtocol


def bounded_protocol(limits: HttpLimits) -> type[BoundedHttpToolsProtocol]:
    """A protocol class with :class:`BoundedHttpToolsProtocol`'s ``limits`` that writes each loop turn's answer
    as one write (:class:`OneWritePerTurnProtocol`), for ``uvicorn.Config(http=...)``."""
    return type("BoundedHttpToolsProtocol", (OneWritePerTurnProtocol, BoundedHttpToolsProtocol), {"limits": limits})
