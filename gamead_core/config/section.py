"""The base of every section of ``config.yaml``: unknown keys are refused, and so is a boolean for a number."""

from __future__ import annotations

import typing
from typing import Annotated, Any

import annotated_types

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, ValidationInfo, field_validator

from gamead_core.durations import parse_duration


# --- Upper bounds of the settings -------------------------------------------------------------------------------
# Every number of the settings tree has one, said in its description (tests/unit/test_setting_bounds.py walks the
# tree): without it ``registry.ttl: 1e300`` passed validation, then nats-py's seconds → int nanoseconds overflowed
# and `gamead serve` retried for ever (attack24 #4). A bound is the most an operator could mean, and within what
# the consumer takes: JetStream holds durations as int64 nanoseconds (at most ~292 years), Python's socket and
# selector timeouts and asyncio's timers take far less than 1e300, and sizes are bytes a process or a stream can
# hold (NATS' largest max_payload is 64 MiB).

#: Seconds: the timeout of one call or request (NATS, Redis, Kubernetes, an HTTP answer).
MINUTES_10 = 600
HOUR = 3600
DAY = 86_400
WEEK = 7 * DAY
#: Seconds: the retention of a stream or bucket (JetStream max age): ten years.
YEARS_10 = 3650 * DAY
#: Seconds: the least a timeout, interval or age of the settings may be (attack42a F4: ``worker.task_timeout: 1e-320``
#: passed ``gt=0`` and could never fire). The event loop's timers wait in whole milliseconds (epoll), so a shorter
#: value would not mean what it says; a setting that takes 0 for "off" says ``ge=0`` instead.
MIN_SECONDS = 0.001
MIB = 1024**2
GIB = 1024**3
#: Bytes: the most a stream or bucket limit may say (-1 = unlimited where the setting allows it).
TIB = 1024**4
#: Messages a stream limit may say (-1 = unlimited): a billion ads.
MAX_COUNT = 1_000_000_000


def plus_zero(value: Any) -> Any:
    """``value``, but a float ``-0.0`` is ``0.0`` (read from ``-0``, it was shown ``-0.0``: attack26 F9)."""
    return 0.0 if isinstance(value, float) and value == 0 else value


def seconds_value(value: Any) -> Any:
    """A setting in seconds as given: a text with a unit read by :func:`gamead_core.durations.parse_duration`
    (``30s``, ``2h30m``, ``14d``); anything else left to the field's own validation as before: a number, or a
    text Python reads as one (a ``GAMEAD_*`` variable: ``"90"``, ``"1e3"``, ``"-1"`` refused by its bound,
    ``"inf"`` by ``allow_inf_nan``), ``true`` refused by :class:`Section`. A text that is neither is refused
    naming the forms read; so is one Python reads as a number but the durations' rule does not (digits of another
    script, ``１２``; an underscore, ``1_000``: attack40a F2, both were taken)."""
    if not isinstance(value, str):
        return value
    if not value.isascii() or "_" in value:
        return parse_duration(value)
    try:
        float(value)
    except ValueError:
        return parse_duration(value)
    return value


#: A setting in seconds: a number, or a duration as the CLI prints and reads one (``queue.ack_wait: 30s``,
#: ``GAMEAD_DLQ__MAX_AGE=14d``, ``registry.ttl: 1m``): fix34, one reading of a duration everywhere; ``-0`` is 0
#: (:func:`plus_zero`; ``GET /v1/doctor?settle=-0`` answered ``settleSeconds: -0.0``, attack42a F3)
Seconds = Annotated[float, BeforeValidator(seconds_value), AfterValidator(plus_zero)]
#: A setting in seconds that cannot be 0: at least :data:`MIN_SECONDS` (a timeout, an interval, an age)
PositiveSeconds = Annotated[Seconds, annotated_types.Ge(MIN_SECONDS)]


def leaf_types(annotation: Any) -> list[Any]:
    """The plain types a field's ``annotation`` is made of (``int | None`` → ``[NoneType, int]``; ``list[str]`` →
    ``[str]``; a ``Literal[...]`` stays whole). Pure."""
    kinds: list[Any] = []
    stack = [annotation]
    while stack:
        a = stack.pop()
        args = typing.get_args(a)
        if args and typing.get_origin(a) is not typing.Literal:
            stack.extend(args)
        else:
            kinds.append(a)
    return kinds


def _number_not_bool(annotation: Any) -> bool:
    """True if a field of ``annotation`` takes an int or a float but not a bool (``int | None``, ``float``…)."""
    kinds = leaf_types(annotation)
    return any(k in (int, float) for k in kinds) and bool not in kinds


class Section(BaseModel):
    """A section of the config file (``api:``, ``queue:``…): an unknown key is refused (``extra="forbid"``),
    so a typo is an error that names it, not a silently ignored setting; a YAML ``true``/``false`` given for a
    number is refused too (pydantic's lax mode reads ``queue.partitions: true`` as 1), and so are ``inf`` and
    ``nan`` for any number (``allow_inf_nan=False``: ``worker.prefetch_wait: inf`` passed ``ge=0`` and stopped
    every worker at its first sizing of the prefetch). Strings from ``GAMEAD_*`` variables are still parsed
    as numbers. A float given as ``-0`` is 0 (``GAMEAD_WORKER__LINGER_MS=-0`` was shown ``-0.0``: attack26 F9)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_a_number(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, bool) and info.field_name is not None:
            field = cls.model_fields.get(info.field_name)
            if field is not None and _number_not_bool(field.annotation):
                raise ValueError(f"a number is expected, not {str(value).lower()}")
        return value

    @field_validator("*", mode="after")
    @classmethod
    def _no_negative_zero(cls, value: Any) -> Any:
        return plus_zero(value)
