"""What a refused setting's error says after its name and origin, in gamead's words rather than pydantic's
(newcomer58: ``worker.concurency (config file c.yaml, line 2): Extra inputs are not permitted``, ``Input should be a
valid dictionary or instance of WorkerSettings``, ``Value error, cannot read duration …``): an unknown key is
named as one, with the key meant; a value of the wrong kind says the kind wanted and, but for a section's, the
value as read."""

from __future__ import annotations

import difflib
import typing
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from gamead_core.bound_text import NOT_NUMBERS, given_text
from gamead_core.config.fields import field_at
from gamead_core.detail_words import detail_words

#: pydantic's error types of a section given something other than a mapping of its settings
_NOT_SECTIONS = frozenset({"model_type", "model_attributes_type", "dict_type"})


def _keys(model: type[BaseModel], path: tuple[str | int, ...]) -> list[str]:
    """The keys of the section at ``path`` under ``model`` (:func:`~gamead_core.config.fields.field_at`; of a
    union's section member: ``FaultSettings | None``), [] when ``path`` leads to no section. Pure."""
    kind = field_at(model, path)[1] if path else model
    for each in (kind, *typing.get_args(kind)):
        if isinstance(fields := getattr(each, "model_fields", None), Mapping):
            return list(fields)
    return []


def refusal_words(error: dict[str, Any], model: type[BaseModel]) -> str:
    """What a pydantic ``error`` (one of ``ValidationError.errors()``) of a setting of ``model`` says: ``no such
    setting in section worker (did you mean 'concurrency'?)``, ``must be a whole number, not 'abc'``, ``must be true
    or false, not 'perhaps'``, ``must be a section of settings (key: value), not one value``; any other as
    :func:`gamead_core.detail_words.detail_words` says it (a choice: ``must be one of retryable, permanent, crash or
    hang, not 'boom'``). A value is shown clipped to 40 characters, never a section's (it may be a secret written in
    the wrong place). Pure."""
    kind, loc, given = error.get("type"), tuple(error.get("loc", ())), error.get("input")
    if kind == "extra_forbidden" and loc:
        where = ".".join(str(p) for p in loc[:-1] if not isinstance(p, int))
        close = difflib.get_close_matches(str(loc[-1]), _keys(model, loc[:-1]), n=1)
        return (f"no such setting{f' in section {where}' if where else ''}"
                + (f" (did you mean {close[0]!r}?)" if close else ""))
    shown = repr(given_text(given)) if isinstance(given, str) else given_text(given)
    if kind in NOT_NUMBERS:
        return f"must be {NOT_NUMBERS[kind]}, not {shown}"
    if kind == "bool_parsing":
        return f"must be true or false, not {shown}"
    if kind in _NOT_SECTIONS:
        return "must be a section of settings (key: value), not one value"
    return detail_words(error, ".".join(str(p) for p in loc))  # words58: "Input should be …" reached this


__all__ = ["refusal_words"]
