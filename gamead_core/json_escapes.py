"""An unpaired UTF-16 surrogate escape in JSON text (``"\\ud800"``): valid JSON grammar, no character (RFC 8259
§8.2), so no UTF-8 can carry it. The API refuses such a body (400 ``invalid_json``, :mod:`gamead_core.api.body`)
and the CLI refuses such an input line before it is sent (:mod:`gamead_cli.inputs`: an HTTP client cannot encode
it, attack30c F8). Pure, standard library only (the CLI imports it)."""

from __future__ import annotations

import re

#: a backslash escape of JSON text, read left to right so that ``\\`` (an escaped backslash) is one token
_ESCAPE = re.compile(rb"\\(u[0-9a-fA-F]{4}|.)", re.DOTALL)
_ESCAPE_TEXT = re.compile(r"\\(u[0-9a-fA-F]{4}|.)", re.DOTALL)


def unpaired_surrogate(body: bytes | str) -> tuple[int, str] | None:
    """The first ``\\uXXXX`` escape of ``body`` that is half a UTF-16 surrogate pair without its other half (a
    high one, D800-DBFF, not followed at once by a low one, DC00-DFFF, or a low one alone): its offset (bytes of
    ``bytes``, characters of ``str``) and text (``(7, "\\ud800")``); None if there is none. Pure; reads the whole
    text (callers test for a ``\\u`` first, or call it on the error path)."""
    pending: re.Match[bytes] | re.Match[str] | None = None  # a high surrogate waiting for its low half
    matches = _ESCAPE.finditer(body) if isinstance(body, bytes) else _ESCAPE_TEXT.finditer(body)
    for match in matches:
        token = match.group(1)
        unit = int(token[1:], 16) if len(token) == 5 and token[:1] in (b"u", "u") else None
        low = unit is not None and 0xDC00 <= unit <= 0xDFFF
        if pending is not None:
            if low and match.start() == pending.end():
                pending = None
                continue
            return pending.start(), _text(pending.group())
        if unit is not None and 0xD800 <= unit <= 0xDBFF:
            pending = match
        elif low:
            return match.start(), _text(match.group())
    return None if pending is None else (pending.start(), _text(pending.group()))


def _text(token: bytes | str) -> str:
    return token.decode() if isinstance(token, bytes) else token
