"""Every number of the command line refused for its range says it one way (:mod:`gamead_core.bound_text`):
``--limit must be 1 to 500, not 0`` — a usage error, exit 2, one red line. Two kinds reach it:

* Typer's own ``min=``/``max=``, which Typer checks with pydantic (``Input should be less than or equal to 64``):
  :func:`bound_line` reads the bound error behind Typer's ``BadParameter`` and the option's ``min``/``max``;
* a callback or a hand check (a float, a duration, a bound that depends on another flag) raises
  :class:`OutOfRange`.

The root group's usage line (:func:`gamead_cli.failures.usage_line`) asks :func:`bound_line` first."""

from __future__ import annotations

from typing import Any, TypeVar

import typer

from gamead_core.bound_text import NOT_NUMBERS, TOO_LONG, Range, is_bound_error, too_long

N = TypeVar("N", int, float)


def param_name(param: Any, hint: Any = None) -> str:
    """What a refusal calls a parameter: an option's long flag (``--limit``), an argument's metavar
    (``REPLICAS``), else the ``param_hint`` given (its quotes dropped)."""
    opts = [o for o in getattr(param, "opts", None) or [] if isinstance(o, str)]
    if getattr(param, "param_type_name", "") == "option" and opts:
        return next((o for o in opts if o.startswith("--")), opts[0])
    if param is not None:
        return str(getattr(param, "metavar", None) or getattr(param, "name", "") or "").upper() or "the value"
    if isinstance(hint, (list, tuple)):
        hint = hint[0] if hint else None
    return str(hint).strip("'\"") if hint else "the value"


class OutOfRange(typer.BadParameter):
    """A number past its :class:`~gamead_core.bound_text.Range`, as typed (``given``); ``what`` names it when the
    parameter's own name would not say enough (``REPLICAS (the worker count)``). Exit 2."""

    def __init__(self, span: Range, given: Any, *, what: str | None = None, **kw: Any) -> None:
        self.span, self.given, self.what = span, given, what
        super().__init__(span.refusal(what or param_name(None, kw.get("param_hint")), given), **kw)

    def format_message(self) -> str:
        return self.span.refusal(self.what or param_name(self.param, self.param_hint), self.given)


def bound_line(exc: BaseException) -> str | None:
    """The one sentence of a number refused for its range, or None if ``exc`` is no such refusal: an
    :class:`OutOfRange`, or Typer's ``BadParameter`` for a ``min``/``max`` it checked with pydantic (its cause a
    ``ValidationError`` of a bound, read by its ``errors()``; the other bound from the parameter)."""
    if isinstance(exc, OutOfRange):
        return exc.format_message()
    param, cause = getattr(exc, "param", None), exc.__cause__
    errors = getattr(cause, "errors", None)
    if param is None or not callable(errors) or type(cause).__name__ != "ValidationError":
        return None
    first = (errors() or [{}])[0]
    span = Range(getattr(param, "min", None), getattr(param, "max", None))
    bound = is_bound_error(first, span)
    if first.get("type") == TOO_LONG and not bound:  # 5,000 digits, past no bound it has
        return too_long(param_name(param), first.get("input"))
    if first.get("type") in NOT_NUMBERS:  # "abc", "1e9" (attack57: pydantic's "Input should be a valid integer…")
        within = f", {span.span()}" if span.low is not None and span.high is not None else ""
        return f"{param_name(param)} must be {NOT_NUMBERS[first['type']]}{within}, not {str(first.get('input'))!r}"
    if not bound or (span.low is None and span.high is None):
        return None
    return span.refusal(param_name(param), first.get("input"))


def checked(value: N, span: Range, given: Any = None, **refusal: Any) -> N:
    """``value``, or :class:`OutOfRange` (exit 2) when ``span`` does not hold it; ``given``: the text typed
    (a duration's), else ``value`` is shown; ``refusal``: :class:`OutOfRange`'s keywords, ``what``, ``param_hint``
    (``--for``), ``ctx``."""
    if not span.holds(value):
        raise OutOfRange(span, value if given is None else given, **refusal)
    return value


__all__ = ["OutOfRange", "bound_line", "checked", "param_name"]
