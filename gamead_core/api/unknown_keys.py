"""Objects naming very many unknown keys, validated at the cost of a few (attack36 F2).

pydantic reports one ``extra_forbidden`` error per unknown key, and turning 150,000 of them into dicts
(``ValidationError.errors()``) and details took ~0.9 s of CPU on the event loop for one 1.7 MB batch item, then
an 11 MB answer. An object with more than :data:`SHOWN_UNKNOWN` unknown keys is validated with only the first
few of them (so they are named, with every other problem of the object); the rest are counted, not listed.
Pure: a set difference over the keys (C speed, ~5 ms for 150,000).
"""

from __future__ import annotations

import functools
from itertools import islice
from typing import Any

from pydantic import BaseModel

from gamead_core.json_keys import key_names

#: unknown keys of one object validated (and so named in ``details``); the others are counted in the message
SHOWN_UNKNOWN = 5


@functools.cache
def accepted_keys(model: type[BaseModel]) -> frozenset[str] | None:
    """The keys ``model`` takes (:func:`gamead_core.json_keys.key_names`, unquoted: its fields' names and aliases,
    and those of the models it nests, an extra name only validated, never dropped wrongly); None when its keys are
    open (it has no unknown keys to trim)."""
    quoted = key_names(model)
    return None if quoted is None else frozenset(name[1:-1].decode() for name in quoted)


def trimmed(data: dict[str, Any], model: type[BaseModel]) -> tuple[dict[str, Any], int]:
    """``data`` with at most :data:`SHOWN_UNKNOWN` keys ``model`` does not take (the first ones, in order), and
    how many unknown keys were left out (0: ``data`` itself is returned)."""
    names = accepted_keys(model)
    if names is None:
        return data, 0
    unknown = len(data.keys() - names)
    if unknown <= SHOWN_UNKNOWN:
        return data, 0
    keep = set(islice((key for key in data if key not in names), SHOWN_UNKNOWN))
    return {k: v for k, v in data.items() if k in names or k in keep}, unknown - SHOWN_UNKNOWN


__all__ = ["SHOWN_UNKNOWN", "accepted_keys", "trimmed"]
