"""What a pydantic validation error says, in gamead's words rather than pydantic's: a 422 ``validation_failed``
detail, a stored record or work message that cannot be read, a flag's refused value (words58: an ad file with only
a title and genre was refused ``description: Field required; callToAction: Field required; duration: Field
required``; ``Input should be …``, ``String should have …`` and ``Extra inputs are not permitted`` reached API
messages the same way)."""

from __future__ import annotations

import re
from typing import Any

from gamead_core.bound_text import NOT_NUMBERS, not_one_of, number_text

#: pydantic's error types of a value of the wrong JSON kind, and the kind wanted (strict mode: no conversions)
_KINDS = {
    **NOT_NUMBERS, "string_type": "a string", "int_type": "a whole number", "float_type": "a number",
    "bool_type": "true or false", "bool_parsing": "true or false", "list_type": "a list (a JSON array)",
    "dict_type": "an object", "model_type": "an object", "model_attributes_type": "an object",
    "datetime_type": "an ISO-8601 time", "datetime_parsing": "an ISO-8601 time",
    "datetime_from_date_parsing": "an ISO-8601 time", "finite_number": "a finite number",
}
#: pydantic's error types of a number past a bound: the words and the ``ctx`` key holding the bound
_BOUNDS = {"greater_than_equal": ("at least", "ge"), "greater_than": ("more than", "gt"),
           "less_than_equal": ("at most", "le"), "less_than": ("less than", "lt")}
#: pydantic's error types of a text or list of the wrong length: the words, ``ctx`` key and what is counted
_LENGTHS = {"string_too_short": ("at least", "min_length", "character"),
            "string_too_long": ("at most", "max_length", "character"),
            "too_short": ("at least", "min_length", "item"), "too_long": ("at most", "max_length", "item")}
#: the start of pydantic's other sentences (``Input should be a valid UUID``, ``Dictionary should have …``)
_SHOULD = re.compile(r"^[A-Z][\w ]*? should ")
_PREFIXES = ("Value error, ", "Assertion failed, ")


def _counted(n: Any, what: str) -> str:
    return f"{number_text(n)} {what}{'' if n == 1 else 's'}"


def detail_words(err: dict[str, Any], where: str) -> str:
    """What pydantic's ``err`` (one of ``ValidationError.errors()``) says, as gamead says it: ``required, not
    given``, ``unknown field 'x'``, ``must be a whole number``, ``must be at most 600``, ``must have at most 200
    characters``, ``must be one of queued, processing or dead, not 'bogus'``; any other ``… should …`` sentence
    from ``must``; a validator's own message without pydantic's ``Value error, ``. The value given
    is not repeated (it may be long), but for a choice's (at most 40 characters). ``where``: the field's path as
    the detail names it (``targetAudience.0``). Pure."""
    kind, ctx = err.get("type"), err.get("ctx") or {}
    if kind == "missing":
        return "required, not given"
    if kind == "extra_forbidden":
        return f"unknown field {where!r}"
    if kind in _KINDS:
        return f"must be {_KINDS[kind]}"
    if kind in _BOUNDS and _BOUNDS[kind][1] in ctx:
        return f"must be {_BOUNDS[kind][0]} {number_text(ctx[_BOUNDS[kind][1]])}"
    if kind in _LENGTHS and _LENGTHS[kind][1] in ctx:
        words, key, unit = _LENGTHS[kind]
        return f"must have {words} {_counted(ctx[key], unit)}"
    if kind == "string_pattern_mismatch" and ctx.get("pattern") == r"\S":
        return "must have a character that is not whitespace"  # the ad texts' rule (models.Text200…)
    if kind == "string_pattern_mismatch" and "pattern" in ctx:
        return f"must match the pattern {ctx['pattern']}"
    if kind in ("literal_error", "enum") and "expected" in ctx:  # "'queued', 'processing' or 'dead'"
        return not_one_of("", re.findall(r"'([^']*)'", str(ctx["expected"])), err.get("input"))
    msg = str(err.get("msg", "invalid"))
    for prefix in _PREFIXES:
        msg = msg.removeprefix(prefix)
    return _SHOULD.sub("must ", msg)


__all__ = ["detail_words"]
