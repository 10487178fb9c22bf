"""nats-py's header parse of every received message, the same result with less work (issue 14.2, session 34).

nats-py 2.16 parses the header block of each message it receives (a work delivery: ``Nats-Msg-Id``,
``Gamead-Ad-Id``, ``Gamead-Record-Revision``) in ``Client._parse_header_lines``: per line a split, a strip, a decode,
then ``any(c.isspace() for c in key)`` — a generator step per character of every header name, ~60 per delivery.
In a worker's burn-down that was one of its largest single costs outside the analysis (``benchmarks/README.md``,
"session 34").

:func:`parse_header_lines` returns the same dict for every input: a block that is all ASCII (what gamead and
JetStream send) is decoded once and split as text, each name stripped of the whitespace ``bytes.strip`` strips,
refused if it holds a character ``str.isspace`` calls whitespace (one regular-expression search instead of a
generator), each value stripped the same way; anything else goes to nats-py's own parse. :func:`install` puts it
on one connection (an attribute of the instance, found before the class's static method); a nats-py without that
method keeps its own.
"""

from __future__ import annotations

import re

from nats.aio.client import Client as NATS

__all__ = ["install", "parse_header_lines"]

_NATS_PARSE = getattr(NATS, "_parse_header_lines", None)
#: what ``bytes.strip()`` strips (ASCII whitespace); ``str.strip()`` would also strip \x1c-\x1f
_BYTES_SPACE = " \t\n\r\x0b\x0c"
#: the ASCII characters ``str.isspace`` is true of: a header name holding one is skipped (nats-py's rule)
_SPACE_IN_NAME = re.compile("[\t\n\x0b\x0c\r\x1c-\x1f ]")


def parse_header_lines(raw: bytes) -> dict[str, str]:
    """``raw`` (a header block after its ``NATS/1.0`` line: ``Name: Value\\r\\n`` per line) → ``{name: value}``,
    exactly as nats-py's ``Client._parse_header_lines`` returns it (its rules: a line without ``:`` or a name with
    whitespace inside is skipped, names and values stripped, a later name replaces an earlier one)."""
    if not raw.isascii() or _NATS_PARSE is None:
        return _NATS_PARSE(raw) if _NATS_PARSE is not None else {}
    out: dict[str, str] = {}
    for line in raw.decode("ascii").split("\r\n"):
        name, sep, value = line.partition(":")
        if not sep:
            continue
        key = name.strip(_BYTES_SPACE)
        if _SPACE_IN_NAME.search(key) is None:
            out[key] = value.strip(_BYTES_SPACE)
    return out


def install(nc: NATS) -> None:
    """Parse the headers of what ``nc`` receives with :func:`parse_header_lines` (nats-py calls
    ``self._parse_header_lines``); no change for a nats-py without that method."""
    if _NATS_PARSE is not None:
        nc._parse_header_lines = parse_header_lines  # type: ignore[method-assign] # noqa: SLF001
