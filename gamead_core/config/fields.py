"""What the settings tree's types say of one setting: the one walker of a field's annotations (:func:`field_rules`)
and the one walker of a setting's location (:func:`field_at`), and what is read through them: a setting's range
(:func:`range_of`, :func:`setting_range`: the bounds a refusal says, :mod:`gamead_core.bound_text`), whether it is
in seconds (:func:`in_seconds`: ``gamead config show`` prints it as a duration) and its type where a refusal says
where it was set (:mod:`gamead_core.config.origin`). Pure: types are read by their attributes."""

from __future__ import annotations

import typing
from collections.abc import Mapping, Sequence
from typing import Any

from gamead_core.bound_text import Range
from gamead_core.config.section import seconds_value


def field_rules(field: Any) -> list[Any]:
    """The metadata of a pydantic field (a ``FieldInfo``): that of every ``Annotated`` in its type
    (``PositiveSeconds | None``: that of ``PositiveSeconds``), innermost first, then its own ``metadata``. Pure."""
    return [*_rules(getattr(field, "annotation", None)), *(getattr(field, "metadata", None) or [])]


def _rules(annotation: Any) -> list[Any]:
    inner = [rule for arg in typing.get_args(annotation) for rule in _rules(arg)]
    return inner + list(getattr(annotation, "__metadata__", ()))


def in_seconds(field: Any) -> bool:
    """Is ``field`` (a pydantic ``FieldInfo``) a setting in seconds: :data:`~gamead_core.config.section.Seconds` or
    :data:`~gamead_core.config.section.PositiveSeconds`, alone or ``| None``? Pure."""
    return any(getattr(rule, "func", None) is seconds_value for rule in field_rules(field))


def range_of(field: Any) -> Range | None:
    """The range a pydantic field gives (``Ge``/``Gt``/``Le``/``Lt`` objects, read by their attribute: those of its
    type, then its own ``metadata``, which win); in seconds when :func:`in_seconds`; None when it has no bound."""
    found: dict[str, Any] = {}
    for rule in field_rules(field):
        found.update({name: getattr(rule, name) for name in ("ge", "gt", "le", "lt")
                      if getattr(rule, name, None) is not None})
    if not found:
        return None
    low, high = found.get("gt", found.get("ge")), found.get("lt", found.get("le"))
    return Range(low, high, low_open="gt" in found, high_open="lt" in found, seconds=in_seconds(field))


def field_at(model: Any, loc: Sequence[Any]) -> tuple[Any, Any]:
    """``(field, type)`` of the setting at ``loc`` (a pydantic error's location) under ``model`` (a settings model
    class): a name steps into a section's field, an index into a list's item type, the key of a dict of sections
    into its value type (``("ratelimit", "roles", "operator", "rate")``). ``field``: the ``FieldInfo`` when ``loc``
    ends in a field's name, else None; ``(None, None)`` when ``loc`` leads nowhere. Pure."""
    field, annotation = None, model
    for part in loc:
        found = _step(annotation, part)
        if found is None:
            return None, None
        field, annotation = found
    return field, annotation


def _step(annotation: Any, part: Any) -> tuple[Any, Any] | None:
    fields = getattr(annotation, "model_fields", None)
    if isinstance(fields, Mapping):
        return (fields[part], fields[part].annotation) if isinstance(part, str) and part in fields else None
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if isinstance(origin, type) and issubclass(origin, Mapping) and isinstance(part, str) and args:
        return None, args[-1]
    if isinstance(origin, type) and issubclass(origin, (list, tuple)) and isinstance(part, int) and args:
        return None, args[0]
    return next((found for arg in args if (found := _step(arg, part)) is not None), None)  # a union's members


def setting_range(model: Any, loc: Sequence[Any]) -> Range | None:
    """The range of the setting at ``loc`` (:func:`field_at`) of the settings ``model``, or None."""
    field = field_at(model, loc)[0]
    return None if field is None else range_of(field)


__all__ = ["field_at", "field_rules", "in_seconds", "range_of", "setting_range"]
