"""The one sentence of a number refused for its range, wherever gamead refuses one: a CLI flag or argument
(Typer's ``min``/``max``, a callback, a hand check: :mod:`gamead_cli.bounds`) and a setting (a config file, a
``GAMEAD_*`` variable or a flag that feeds one: :mod:`gamead_core.config.load`)::

    --limit must be 1 to 500, not 0
    REPLICAS (the worker count) must be 0 to 10,000, not 100,000
    --refresh must be 0.2s to 1m, not 0
    api.port (a command-line option) must be 0 to 65,535, not 70,000

Before (range46) one kind of refusal read three ways: pydantic's ``Input should be less than or equal to 64``,
``the worker count must be 0 to 10,000, not …`` (attack45 F9) and ``0 is not a number from 0.2 to 60``.
Numbers carry thousands separators; a duration's bounds are printed as :func:`gamead_core.durations.format_duration`
prints one (a whole unit without its zero tail: ``1m``, not ``1m00s``), the value refused as it was typed.
Pure; no pydantic (a setting's range is read from its type by :mod:`gamead_core.config.fields`)."""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gamead_core.durations import format_duration

#: pydantic's error types of a number past a bound (``ge``, ``gt``, ``le``, ``lt``)
BOUND_ERRORS = frozenset({"greater_than_equal", "greater_than", "less_than_equal", "less_than"})
#: pydantic's error type of an int of more digits than Python converts (``sys.get_int_max_str_digits()``, 4,300):
#: past any bound gamead sets on the side of its sign (attack55: ``Unable to parse input string as an integer,
#: exceeded maximum size`` where 30 digits said ``must be 1 to 1,024, not …``)
TOO_LONG = "int_parsing_size"
#: characters of a refused text shown at most
SHOWN = 40
#: pydantic's error types of a text that is no number of the setting's or parameter's kind, and what that kind is
#: called in a refusal (``must be a whole number, not 'abc'``: the CLI's arguments and the settings alike)
NOT_NUMBERS = {"int_parsing": "a whole number", "int_from_float": "a whole number", "float_parsing": "a number"}


def number_text(value: float) -> str:
    """``10,000``, ``0.001``, ``1,000,000`` (``1e6``), ``inf``, ``a number of ~6,021 digits`` (an int past the
    4,300 digits Python writes): a number as a refusal shows it. Pure."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)[:SHOWN]
    if isinstance(value, int):
        try:
            return f"{value:,}"
        except ValueError:  # more digits than Python writes (4,300): "unexpected ValueError", exit 1 (attack55)
            digits = math.ceil(abs(value).bit_length() * math.log10(2))
            return f"a{' negative' if value < 0 else ''} number of ~{digits:,} digits"
    if not math.isfinite(value):
        return str(value)
    if value.is_integer() and abs(value) < 1e21:
        return f"{int(value):,}"
    return f"{value:,.15g}"


def seconds_text(seconds: float) -> str:
    """A bound in seconds: ``0``, ``1ms``, ``0.2s``, ``10s``, ``1m``, ``7d`` (:func:`format_duration`, a whole
    unit without its zero tail: each still reads back as itself). Pure."""
    if seconds == 0:
        return "0"
    text = format_duration(seconds, fine=seconds < 0.1)
    for tail, unit in ((".0s", "s"), ("m00s", "m"), ("h00m", "h")):
        if text.endswith(tail):
            return text[: -len(tail)] + unit
    return text


def given_text(given: Any, *, seconds: bool = False) -> str:
    """The value refused, as typed: a text that is a number gets separators (``100000`` → ``100,000``), a
    duration's text is left as typed (``8d``); a duration read already (a setting's ``2h``: 7200.0) is printed
    as its bounds are (``2h``). Pure."""
    if isinstance(given, str):
        text = given.strip()
        if not seconds:
            for kind in (int, float):
                try:
                    value = kind(text)
                except ValueError:
                    continue
                if kind is int or math.isfinite(value) or "n" in text.lower():  # inf, nan: as read
                    return number_text(value)
                break  # 1e999, or 5,000 digits int() does not convert: as typed, not "inf"
        return text[:SHOWN] + ("…" if len(text) > SHOWN else "")
    if seconds and isinstance(given, (int, float)) and not isinstance(given, bool) and math.isfinite(given):
        return seconds_text(given) if given == 0 or 0.001 <= given < 1e9 else f"{number_text(given)}s"
    return number_text(given)


@dataclass(frozen=True)
class Range:
    """A number's range: ``low``/``high`` (None: no bound that side), each included unless ``*_open``;
    ``or_zero``: 0 is taken too ("0 = off"); ``seconds``: a duration."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    or_zero: bool = False
    seconds: bool = False

    def holds(self, value: float) -> bool:
        """Whether ``value`` is in the range (``inf`` and ``nan`` never are; an int of any size is compared as it is:
        ``math.isfinite`` of one past a float's range raised ``OverflowError``). Pure."""
        if self.or_zero and value == 0:
            return True
        if isinstance(value, float) and not math.isfinite(value):
            return False
        above = self.low is None or (value > self.low if self.low_open else value >= self.low)
        below = self.high is None or (value < self.high if self.high_open else value <= self.high)
        return above and below

    def span(self) -> str:
        """``1 to 500``, ``at least 1``, ``0 or 0.001 to 1,000,000``; a bound left out is said in words, on both
        sides when either is: ``more than 0 and at most 7d`` (not ``0 to 7d (0 excluded)``, polish47). Pure."""
        show = seconds_text if self.seconds else number_text
        lo = None if self.low is None else f"{'more than' if self.low_open else 'at least'} {show(self.low)}"
        hi = None if self.high is None else f"{'less than' if self.high_open else 'at most'} {show(self.high)}"
        if lo is not None and hi is not None and not (self.low_open or self.high_open):
            text = f"{show(self.low)} to {show(self.high)}"
        else:
            text = " and ".join(part for part in (lo, hi) if part is not None)
        return f"0 or {text}" if self.or_zero else text

    def refusal(self, what: str, given: Any) -> str:
        """``<what> must be <lo> to <hi>, not <given>``: the one sentence of a number out of range. Pure."""
        return f"{what} must be {self.span()}, not {given_text(given, seconds=self.seconds)}"


def one_of(choices: Sequence[str]) -> str:
    """``one of queued, processing or dead``, ``table or json``: the choices a refusal lists, in their order. Pure."""
    listed = [str(c) for c in choices]
    if len(listed) < 3:
        return " or ".join(listed)
    return "one of " + ", ".join(listed[:-1]) + f" or {listed[-1]}"


def not_one_of(what: str, choices: Sequence[str], given: Any) -> str:
    """``--status must be one of queued, processing or dead, not 'bogus'`` (``--output must be table or json, not
    'yaml'``): a value that is none of a parameter's or setting's ``choices`` (``what``: its name; ``""``: the
    sentence from ``must``), shown as typed (at most :data:`SHOWN` characters). Pure."""
    shown = given_text(given) if isinstance(given, str) else number_text(given)
    return f"{what} must be {one_of(choices)}, not {shown!r}".lstrip()


def past_int_digits(digits: int) -> bool:
    """Whether a base-10 int of ``digits`` digits has more than Python converts (``sys.get_int_max_str_digits()``,
    4,300 by default; 0: no limit). Pure."""
    return 0 < sys.get_int_max_str_digits() < digits


def too_long(what: str, given: Any) -> str:
    """``--count has 5,000 digits; gamead reads numbers of at most 4,300 digits``: an int of more digits than Python
    converts where no bound on its side says more (:data:`TOO_LONG`; ``--count`` is at least 1, and it is). Pure."""
    digits = sum(c.isdigit() for c in str(given))
    return f"{what} has {digits:,} digits; gamead reads numbers of at most {sys.get_int_max_str_digits():,} digits"


def is_bound_error(error: dict[str, Any], span: Range | None = None) -> bool:
    """Whether a pydantic error (one of ``ValidationError.errors()``) is a number past a bound: of
    :data:`BOUND_ERRORS`, or :data:`TOO_LONG` when ``span`` (the value's range) bounds the side of its sign. Pure."""
    if error.get("type") == TOO_LONG:
        below = str(error.get("input", "")).strip().startswith("-")
        return span is not None and (span.low if below else span.high) is not None
    return error.get("type") in BOUND_ERRORS


__all__ = ["BOUND_ERRORS", "NOT_NUMBERS", "TOO_LONG", "Range", "given_text", "is_bound_error", "not_one_of",
           "number_text", "one_of", "past_int_digits", "seconds_text", "too_long"]
