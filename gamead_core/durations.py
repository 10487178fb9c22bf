"""The one reading of a duration a person writes, wherever gamead takes one: the CLI's options (``--since``/
``--until`` ages, ``scale set --for``, ``--timeout``, ``--refresh``, ``--settle``, ``--give-up-after``), the
dashboard's ``scale N for 10m`` and every setting in seconds (``queue.ack_wait: 30s``,
``GAMEAD_DLQ__MAX_AGE=14d``: :data:`gamead_core.config.section.Seconds`). Pure, and no pydantic: the CLI
reads its options with it before any settings are loaded.

It takes every form gamead prints a duration in, so a figure copied from its output reads back as itself
(``tests/unit/test_durations.py`` prints and reads each). Before, each place had a parser of its own, and none
read a compound: ``gamead dlq purge --since 2h30m`` was refused (fix34). And :func:`format_duration` is the one
way gamead prints one (ages, timings, waits: :func:`gamead_cli.formats.age`, ``took``): ``0.4s``, ``2.5s``,
``12s``, ``3m05s``, ``2h10m``, ``1d4h``, each read back by :func:`parse_duration` as itself to what it shows.
Before (fix35d item 2) ``age`` printed a day and 4 hours as ``28h00m`` and ``took`` ``350 ms``/``100800.0 s``.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Any, Final

#: seconds per unit, by every name a unit is read under (lower case)
UNITS: Final[dict[str, float]] = {
    **dict.fromkeys(("y", "yr", "year", "years"), 365 * 86400.0),  # as the settings' bounds count one (10 years)
    **dict.fromkeys(("w", "wk", "week", "weeks"), 604800.0),
    **dict.fromkeys(("d", "day", "days"), 86400.0),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), 3600.0),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), 60.0),
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), 1.0),
    **dict.fromkeys(("ms", "msec", "millisecond", "milliseconds"), 0.001),
}
#: what a refusal names: the forms read
FORMS: Final[str] = ("a number of seconds (90, 1.5) or amounts with units y, w, d, h, m, s, ms, largest first "
                     "(90s, 10m, 2h30m, 1d4h, 3m05s, 1.5h, 350 ms)")
#: characters read at most: a longer text is no duration (and its digits could overflow a float)
MOST: Final[int] = 64

#: ASCII digits only (``\d`` takes any script's: ``１２s`` and ``١٢s`` were read as 12 s, attack40a F2)
_PART = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*([a-z]+)\s*")
_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]*)?|\.[0-9]+")


def parse_duration(text: str) -> float:
    """``text`` → seconds (a finite float ≥ 0). A bare number is seconds (``90``, ``1.5``); else one or more
    amounts, each a number and a unit of :data:`UNITS`, largest unit first, each unit once, spaces between them
    or not (``2h30m``, ``2h 30m``, ``1d4h``, ``3m05s``, ``1.5h``, ``350 ms``, ``5 min``); case and surrounding
    spaces do not matter. Pure. Raises ``ValueError`` naming :data:`FORMS` for anything else (a sign, an
    exponent, a unit twice or out of order: ``30m2h``, an empty text, more than :data:`MOST` characters)."""
    words = text.strip().lower() if isinstance(text, str) else ""
    if not words or len(words) > MOST:
        raise ValueError(_refusal(text))
    if _NUMBER.fullmatch(words):
        return float(words)
    total, at, last = 0.0, 0, math.inf
    while at < len(words):
        m = _PART.match(words, at)
        unit = UNITS.get(m.group(2)) if m else None
        if m is None or unit is None or unit >= last:  # not an amount, an unknown unit, a unit twice/out of order
            raise ValueError(_refusal(text))
        total, at, last = total + float(m.group(1)) * unit, m.end(), unit
    return total


def format_duration(seconds: float, *, fine: bool = False) -> str:
    """``seconds`` (≥ 0, finite) as gamead prints a duration, the largest units first: ``0.4s`` under 10 s
    (``fine``: ``350ms`` under a second, for a timing such as a check's), ``12s`` (rounded), ``3m05s``,
    ``2h10m``, ``1d4h`` (truncated to the last unit; ``3d``: no hours). Pure; :func:`parse_duration` reads each
    back to within its last unit (a millisecond, a tenth, a second, a minute, an hour). Raises ``ValueError`` for
    a negative or non-finite value (no duration)."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 <= seconds < math.inf:
        raise ValueError(f"not a duration: {seconds!r}")
    s = float(seconds)
    if fine and round(s * 1000) < 1000:  # a figure rounded up to the next unit is printed in that unit, so its
        return f"{round(s * 1000)}ms"  # reading prints the same text again (0.9996 → 1.0s, never 1000ms)
    if round(s, 1) < 10:
        return f"{round(s, 1):.1f}s"
    if round(s) < 60:
        return f"{round(s)}s"
    s = max(s, 60.0)
    if s < 3600:
        return f"{int(s // 60)}m{int(s % 60):02d}s"
    if s < 86400:
        return f"{int(s // 3600)}h{int(s % 3600 // 60):02d}m"
    days, hours = int(s // 86400), int(s % 86400 // 3600)
    return f"{days}d{hours}h" if hours else f"{days}d"


def exact_duration(seconds: float) -> str:
    """``seconds`` (≥ 0, finite) as :func:`format_duration` prints it (``fine``: ``250ms``, ``1.5s``, ``30s``,
    ``5m00s``, ``14d``) when :func:`parse_duration` reads that back as exactly ``seconds``; else in every unit it
    needs, from its largest down to its last non-zero one (``1h02m05s``, ``1d1h01m01s``, ``1m30.5s``, ``12.5s``);
    else (a sum of units a float cannot hold exactly) in seconds with every digit it has (``0.0001s``): what
    ``gamead config show`` prints for a setting in seconds, so a value copied from it into a config file is the
    value shown (units46: it printed ``ack_wait: 30.0``, no unit; polish47: ``3725.0s``, ``90061.0s``). Pure;
    raises ``ValueError`` as :func:`format_duration` does."""
    text = format_duration(seconds, fine=True) if seconds else format_duration(seconds)  # 0: 0.0s, not 0ms
    if parse_duration(text) == seconds:
        return text
    digits = Decimal(repr(float(seconds)))  # every digit, never an exponent (1e-05s is unread)
    composed = _in_units(digits)
    return composed if parse_duration(composed) == seconds else f"{digits:f}s"


def _in_units(seconds: Decimal) -> str:
    """``seconds`` in days, hours, minutes and seconds, from the largest non-zero unit to the last non-zero one, as
    :func:`format_duration` writes them (``1d4h``, ``2h10m``, ``3m05s``: two digits after a larger unit but for
    hours). Pure."""
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    amounts = [(days, "d"), (hours, "h"), (minutes, "m"), (secs, "s")]
    first = next((i for i, (n, _) in enumerate(amounts) if n), 3)
    last = max((i for i, (n, _) in enumerate(amounts) if n), default=3)
    parts = []
    for i in range(first, last + 1):
        n, unit = amounts[i]
        text = f"{n.normalize():f}" if unit == "s" else f"{int(n)}"
        if i > first and unit in ("m", "s"):
            text = text.zfill(len(text) - len(text.split(".")[0]) + 2)  # 05 and 05.25: the whole part, 2 digits
        parts.append(text + unit)
    return "".join(parts)


def is_duration(text: str | None) -> bool:
    """Does :func:`parse_duration` read ``text``? Pure."""
    try:
        parse_duration(text or "")
    except ValueError:
        return False
    return True


def _refusal(text: Any) -> str:
    shown = repr(text[:MOST]) + ("…" if len(text) > MOST else "") if isinstance(text, str) else repr(text)
    return f"cannot read duration {shown}: use {FORMS}"


__all__ = ["FORMS", "MOST", "UNITS", "exact_duration", "format_duration", "is_duration", "parse_duration"]
