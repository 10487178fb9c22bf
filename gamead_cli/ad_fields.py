"""An ad's fields as the CLI reads them from a file: each field of the submission model that has two names (its
JSON name ``targetAudience`` and its Python name ``target_audience``, both accepted by the API one at a time).

An ad giving one field under both names is ambiguous (the API refuses it: 400 ``ambiguous_field``), so the CLI
refuses it before sending (:func:`spelled_twice_problem`), and a flag overriding a field replaces it under
whichever name the file gave it (:func:`with_overrides`), so ``--audience`` with a file holding
``target_audience`` sends one of the two.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gamead_core.json_keys import Spelling


@functools.cache
def _spellings() -> tuple[Spelling, ...]:
    """:func:`gamead_core.json_keys.two_spellings` of the submission model (imported here, when an ad is read)."""
    from gamead_core.json_keys import two_spellings
    from gamead_core.models import AdSubmission

    return two_spellings(AdSubmission)


def spelled_twice_problem(ad: Mapping[str, Any]) -> str | None:
    """What an input-file message says of ``ad`` (a decoded JSON object) when it gives a field under both its
    names (``the field "targetAudience" is given twice, as "targetAudience" and as "target_audience": give one of
    the two names``); None when it does not."""
    from gamead_core.json_keys import spelled_twice, twice_message

    twice = spelled_twice(ad, _spellings())
    return None if twice is None else twice_message(twice)


def with_overrides(ad: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``ad`` with ``overrides`` (fields set by flags) applied: a field overridden is dropped from ``ad`` under
    its other name too, so the result never gives one field under both. Pure."""
    other = {s.name: s.alias for s in _spellings()} | {s.alias: s.name for s in _spellings()}
    return {**{k: v for k, v in ad.items() if other.get(k) not in overrides}, **overrides}
