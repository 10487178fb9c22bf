"""A JSON number past a double's range (±1.8e308): one rule and one sentence for the API and the CLI (numbers55).

RFC 8259 §6 lets a parser limit the range of numbers; this API's is a double's (orjson reads an integer past 64
bits as a double, and ``1e400`` or an integer of 400 digits as infinity, which it refuses). The API refuses such a
body (400 ``invalid_json``, :func:`gamead_core.api.body.not_json`), and the CLI's reader of input files refuses the
same numbers when it reads them (:func:`gamead_cli.inputs.strict_loads`), in the same words:
:func:`past_range_words`. No import of the API: the CLI reads this without loading a web framework.
"""

from __future__ import annotations

import math
import re
from typing import Final

from gamead_core.bound_text import SHOWN

#: a JSON number (RFC 8259 §6), from its first character
NUMBER: Final = re.compile(r"-?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")
#: a JSON string (skipped: digits in it are no number) or a JSON number
_STRING_OR_NUMBER: Final = re.compile(r'"(?:[^"\\]|\\.)*"|' + NUMBER.pattern, re.DOTALL)


def past_range(token: str) -> bool:
    """Whether the JSON number text ``token`` (``1e400``, ``-9…`` of 400 digits) is past a double's range, as the
    API reads it: its nearest double is infinite. Pure; any length (``float`` has no digit limit, ``int`` has)."""
    return not math.isfinite(float(token))


def first_past_range(text: str) -> int | None:
    """The 0-based character offset in JSON ``text`` of its first number (outside strings) past a double's range
    (:func:`past_range`), None if none. Pure, O(len(text)): for an error path, after a parser refused one."""
    for found in _STRING_OR_NUMBER.finditer(text):
        token = found[0]
        if not token.startswith('"') and past_range(token):
            return found.start()
    return None


def past_range_words(text: str, pos: int) -> str:
    """``the number at byte 13 (9999…, 5,000 characters) is past the range this API reads (a double's: ±1.8e308)``:
    the one sentence of such a number of ``text`` starting at character ``pos`` (its byte offset in UTF-8 is said),
    cut at :data:`~gamead_core.bound_text.SHOWN` characters with its length. Pure."""
    number = NUMBER.match(text, pos)
    token = number[0] if number else text[pos:pos + SHOWN]
    shown = token if len(token) <= SHOWN else f"{token[:SHOWN]}…, {len(token):,} characters"
    return (f"the number at byte {len(text[:pos].encode())} ({shown}) is past the range this API reads "
            "(a double's: ±1.8e308)")


__all__ = ["NUMBER", "first_past_range", "past_range", "past_range_words"]
