"""How the CLI and the dashboard write values for people: user text kept literal and on one line, commands to
paste, empty lists, times (UTC), durations, windows of rates and byte sizes. Pure: each returns a ``str`` or a rich
``Text`` and prints nothing (:mod:`gamead_cli.output` prints)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from rich.text import Text

from gamead_cli.cell_text import cut_at
from gamead_core.count_words import count_text as count_text, counted as counted  # the CLI imports them here
from gamead_core.durations import exact_duration, format_duration
from gamead_core.rate_window import RATE_WINDOW_SECONDS, window_words
from gamead_core.safe_text import shown
from gamead_core.times import clock_utc


def command_text(text: str, style: str = "dim") -> Text:
    """A text that holds a command to paste (``undo with: gamead scale clear --api …``), which rich must never
    wrap: a command cut across lines with a real newline pastes as a different one (attack25 finding 4). Not
    wrapped nor cut however narrow the terminal (the terminal folds it on screen; a pipe gets it whole), printed
    by :func:`gamead_cli.output.emit` (no crop) or with ``soft_wrap``."""
    return Text(text, style=style, no_wrap=True, overflow="ignore")


def flags_given(flags: Mapping[str, Any] | None) -> str:
    """``--state running --priority 5``: the flags of ``flags`` (``{"--state": "running"}``) that were given, one
    whose value is None, False or empty left out, as the line of a search that found nothing names them
    (:func:`empty_text`, a DLQ replay or purge that matched nothing). Pure."""
    return " ".join(f"{flag} {value}" for flag, value in (flags or {}).items() if value not in (None, False, ""))


def empty_text(nothing: str, flags: Mapping[str, Any] | None = None, hint: str = "") -> Text:
    """What a list verb prints when its list is empty, instead of a bare table header: ``no jobs`` or, with the
    filters given (``{"--state": "running"}``; :func:`flags_given`), ``no jobs match --state running``, then
    ``hint`` (what to do, or why it can be empty). ``-o json`` prints the verb's empty shape instead. Pure."""
    given = flags_given(flags)
    text = Text(f"{nothing} match {given}" if given else nothing, style="yellow")
    if hint:
        text.append(f" ({hint})", style="dim")
    return text


def plain(value: Any) -> Text:
    """User data as literal text: a title like ``[red]x`` must not be read as rich markup, and a control
    character shows escaped (:func:`gamead_core.safe_text.shown`)."""
    return Text("" if value is None else shown(str(value)))


def clip(value: Any, width: int) -> str:
    """One line of at most ``width`` characters (an ellipsis marks a cut, never inside an escape: ``EVIL a…``, not
    ``EVIL a\\u202…``); runs of whitespace become one space, a control character shows escaped
    (:func:`gamead_core.safe_text.shown`)."""
    text = shown(" ".join(str(value or "").split()))
    return text if len(text) <= width else text[: cut_at(text, width - 1)] + "…"


def short_datetime(value: Any) -> str:
    """An ISO 8601 time as shown in tables: ``2024-05-01T12:34:56.789+00:00`` → ``2024-05-01 12:34:56``
    (``-`` for none)."""
    if not value:
        return "-"
    return str(value).replace("T", " ")[:19]


def month_time(value: Any, this_year: int | None = None) -> str:
    """A time in a table's DEAD AT or CREATED column: ``12-05 06:28:00`` (UTC) in ``this_year`` (default: the
    present one, UTC), with the year before it otherwise (``1970-01-01 00:00:00``), so an entry imported from years
    ago, or one of last December read in January, never reads as today's (attack41a F3: 0001, 1970 and 2020 all
    read ``01-01 00:00:00``); ``-`` for none, as given when unreadable. Pure but for the default year."""
    if not value:
        return "-"
    when = _utc(value)
    if when is None:
        return str(value)
    year = this_year if this_year is not None else datetime.now(timezone.utc).year
    text = when.isoformat(sep=" ", timespec="seconds")[:19]  # the year always 4 digits (newcomer33 F6)
    return text[5:] if when.year == year else text


def age(seconds: float | None, *, fine: bool = False) -> str:
    """``0.4s``… as :func:`gamead_core.durations.format_duration` prints a duration (``4.0s``, ``12s``, ``3m05s``,
    ``2h10m``, ``1d4h``; ``fine``: ``350ms`` under a second); ``-`` for None, NaN or infinity, a negative one (a
    clock behind) with its sign. Before (fix35d item 2) a day and 4 hours printed ``28h00m``, not ``1d4h``."""
    if seconds is None or not math.isfinite(seconds):
        return "-"
    return format_duration(seconds, fine=fine) if seconds >= 0 else f"-{format_duration(-seconds, fine=fine)}"


#: a duration as :func:`age` prints it, between marks (``≈``, ``-`` before; ``!``, ``?`` after), whose last unit
#: can go: ``11m07s!`` → ``11m`` ``07s`` ``!``
_TWO_UNITS = re.compile(r"^(\D*\d+[a-z]+)\d+[a-z]+(\D*)$")
#: a duration of days (``730d``, ``1157d4h``), between marks: it can be said in years (365 days, as UNITS' ``y``)
_DAYS = re.compile(r"^(\D*)(\d+)d(?:\d+h)?(\D*)$")


def fit_duration(text: str, width: int) -> str:
    """``text`` (a duration cell: :func:`age`'s, maybe marked ``≈…?`` or ``…!``) in at most ``width`` cells: as it
    is when it fits, else without its last unit (``11m07s!`` → ``11m!``, ``≈1m05s?`` → ``≈1m?``, ``23h59m`` →
    ``23h``: truncated, never rounded up), so a fixed-width column keeps its neighbours in place (tui42 F6: OLDEST
    ``11m07s!`` pushed MAX and P95 one cell right); days that still do not fit in whole years of 365 days
    (``11574d!`` → ``31y!``, ``36500d`` → ``100y``; tui43: an age of years overflowed). A text that does not
    shorten so is returned as short as it got. Pure."""
    if len(text) <= width:
        return text
    two = _TWO_UNITS.match(text)
    text = two.group(1) + two.group(2) if two else text
    days = _DAYS.match(text)
    if len(text) <= width or days is None or int(days.group(2)) < 365:
        return text
    return f"{days.group(1)}{int(days.group(2)) // 365}y{days.group(3)}"


def took(seconds: float) -> str:
    """How long something took or will wait (``gamead doctor``'s check, ``try again in …``, ``gave up after …``):
    :func:`age`, fine (``350ms``, ``2.5s``, ``1m15s``; before fix35d ``350 ms``, ``75.0 s``). Pure."""
    return age(seconds, fine=True)


def short_window(seconds: Any) -> str | None:
    """``last 11 s`` when the API's rates are over less than their minute (``windowSeconds`` 11: its sampler, or the
    autoscaler leader's, started 11 s ago); None for the full minute or an unknown window. Pure; the one wording of
    ``gamead top`` and ``gamead scale status``."""
    short = isinstance(seconds, (int, float)) and not isinstance(seconds, bool) and round(seconds) < RATE_WINDOW_SECONDS
    return window_words(seconds) if short else None


def ago(seconds: float | None) -> str:
    """``1.9s ago``: how long since something happened."""
    return "-" if seconds is None else f"{age(seconds)} ago"


def rows_shown(count: int, of: str | None, offset: Any = None, after_cursor: bool = False) -> str:
    """Which rows of a paged list a page holds (``ads list``, ``dlq list``): ``rows 501-735 of 735`` when the rows
    before it are known (``offset``: the API's count of matches before the page, an int; ``row 5 of 5`` for one),
    ``235 shown (after the cursor) of 735`` when a cursor was given and they are not, else ``235 shown of 735``;
    ``of`` is the total as said (``2,622``, ``at least 27 matching``: :func:`count_text`; None: no total). Figures
    with thousands separators, as every count the CLI prints (regress44 F7: ``1 shown of 2622``). Before (attack43b
    F4) a second page read ``235 shown of 735``, as if 500 were missing. Pure."""
    total = f" of {of}" if of is not None else ""
    known = isinstance(offset, int) and not isinstance(offset, bool) and offset >= 0 and count > 0
    if known and (offset > 0 or after_cursor):
        return f"rows {offset + 1:,}-{offset + count:,}{total}" if count > 1 else f"row {offset + 1:,}{total}"
    return f"{count:,} shown" + (" (after the cursor)" if after_cursor else "") + total


def byte_size(n: int | float | None) -> str:
    """A byte count in IEC units, the one way the CLI writes sizes (``gamead top``, ``gamead doctor``):
    ``512 B``, ``511.5 KiB``, ``3.0 GiB`` (1 KiB = 1024 B; one decimal above bytes); ``-`` for None. Pure."""
    if n is None:
        return "-"
    value = float(n)
    if value < 1024:
        return f"{value:.0f} B"
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if value < 1024 or unit == "TiB":
            break
    return f"{value:.1f} {unit}"


def settings_shown(settings: Any, data: Any) -> Any:
    """``data`` (the plain dump of ``settings``, a pydantic settings tree: ``masked_dump``) with each setting in
    seconds written as a duration (:func:`gamead_core.durations.exact_duration`: ``ack_wait: 30s``, ``ttl: 5m00s``,
    ``max_age: 14d``, ``socket_timeout: 250ms``, ``nats_unhealthy_after: 1h02m05s``) and each in milliseconds
    (``_ms``) a whole number when it is one (``write_linger_ms: 2``), as ``gamead config show`` prints it for
    people; every other value as it is (``-o json`` prints ``data`` itself: numbers). Each reads back as the value
    shown (a setting in seconds takes a duration). Before (units46) ``ack_wait: 30.0``: 30 of what. Pure."""
    from pydantic import BaseModel

    from gamead_core.config.fields import in_seconds

    if isinstance(settings, BaseModel) and isinstance(data, dict):
        fields = type(settings).model_fields
        return {k: (exact_duration(v) if k in fields and in_seconds(fields[k]) and _seconds_number(v)
                    else _whole(v) if k.endswith("_ms") and isinstance(v, float)
                    else settings_shown(getattr(settings, k, None), v)) for k, v in data.items()}
    if isinstance(settings, Mapping) and isinstance(data, dict):
        return {k: settings_shown(settings.get(k), v) for k, v in data.items()}
    return data


def _whole(value: float) -> float | int:
    """A setting in milliseconds (``_ms`` by its name) as the ones that are ints print: ``write_linger_ms: 2``
    beside ``head_cache_ms: 100`` (polish47: ``2.0``); ``0.5`` stays. Pure."""
    return int(value) if value.is_integer() else value


def _seconds_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < math.inf


#: seconds after ``now`` a time may lie and still read as now (``0.0s ago``): the service's clock is known within
#: ± (0.5 s + half a round trip) (:mod:`gamead_cli.service_clock`), so an entry dead a moment ago could read as in the
#: future and lose its age (``dlq show`` right after the death: a fresh-clone run of test_review_c6)
JUST_NOW = 1.5


def page_now(now: datetime | None = None) -> datetime:
    """The one ``now`` of a page that prints several ages (``ads get``, ``dlq show``, ``jobs show``, top's details):
    ``now`` when given, else the service's time (:mod:`gamead_cli.service_clock`: a laptop 2 h fast read every time
    as future). A view reads it once and passes it to each :func:`utc_when`, so its ages are told from one instant
    (attack43b F3)."""
    if now is not None:
        return now
    from gamead_cli.service_clock import utcnow

    return utcnow()


def shown_age(when: datetime, now: datetime) -> float:
    """Seconds from ``when`` to ``now`` (aware datetimes) as an age beside its whole-second stamp: under 10 s (printed
    in tenths) the exact difference; from 10 s (printed in whole seconds or coarser) the difference of the two whole
    seconds, ``now``'s and the stamp's, so two ages told from one ``now`` differ by exactly what their printed stamps
    do (attack43b F3: ``12:36:11 (5m21s ago)`` beside ``12:36:12 (5m19s ago)``: 321.0 s and 319.74 s, each cut
    on its own). Within 1 s of the exact age. Pure."""
    exact = (now - when).total_seconds()
    if round(exact, 1) < 10:
        return exact
    return float(math.floor(now.timestamp()) - math.floor(when.timestamp()))


def utc_when(value: Any, *, now: datetime | None = None) -> str:
    """An ISO 8601 time as the ``show``/``get`` views print it: ``2024-05-01 12:34:56 UTC (3m05s ago)`` (the age,
    :func:`shown_age`, when the time can be read and is in the past, or within :data:`JUST_NOW` after now:
    ``0.0s ago``; ``-`` for none). Pure given ``now`` (an aware datetime: a page passes its one
    :func:`page_now` to each); else the age is on the service's clock now."""
    if not value:
        return "-"
    when = _utc(value)
    if when is None:
        return str(value)
    text = _stamp(when)
    seconds = shown_age(when, page_now(now))
    if -JUST_NOW <= seconds < 0:  # within the service clock's error of now: it happened now, not in the future
        seconds = 0.0
    return f"{text} ({ago(seconds)})" if seconds >= 0 else text


def window_text(window: Mapping[str, Any], what: str = "dead") -> str:
    """The absolute window a ``--since``/``--until`` stood for, as every verb that filters by time says it
    (attack33a F10: ``--until 1h`` resolved on a clock 2 h fast purged fresh entries, and nothing showed the
    cut-off): ``dead at or after 2026-12-04 01:46:12 UTC``, ``dead before …``, ``dead at or after … and before
    …``; ``what`` first (``dead``; "" for none); "" when ``window`` has neither ``since`` nor ``until`` (ISO
    times). Pure."""
    since, until = (_utc_text(window.get(key)) for key in ("since", "until"))
    words = " and ".join(part for part in (since and f"at or after {since}", until and f"before {until}") if part)
    return f"{what} {words}".strip() if words else ""


def _stamp(when: datetime) -> str:
    """An aware UTC datetime as ``2026-12-04 01:46:12 UTC``, the year always 4 digits (``strftime("%Y")`` wrote
    the year 3 as ``3``: newcomer33 F6). Pure."""
    return when.isoformat(sep=" ", timespec="seconds")[:19] + " UTC"


def _utc(value: Any) -> datetime | None:
    """An ISO 8601 time as an aware UTC datetime (no offset = UTC); None when unreadable. Pure."""
    try:
        when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return (when if when.tzinfo else when.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)


def _utc_text(value: Any) -> str:
    """An ISO 8601 time → ``2026-12-04 01:46:12 UTC`` ("" for none; as given when unreadable). Pure."""
    if not value:
        return ""
    when = _utc(value)
    return str(value) if when is None else _stamp(when)


#: the zone of every time the CLI and the dashboard print (the API's times are UTC; nothing is converted)
TIME_ZONE = "UTC"


def time_column(label: str) -> str:
    """A table's label for a column of times: ``SUBMITTED`` → ``SUBMITTED (UTC)``. Every time column of every
    table (CLI and dashboard) says its zone through this one helper (ops13 finding 3: a bare ``13:06:30``)."""
    return f"{label} ({TIME_ZONE})"


def clock_text(epoch: float) -> str:
    """``02:31:05 UTC`` for epoch seconds ``epoch``: a time the CLI says on stderr within the hour (an outage's
    stop, a rate limit's end); :func:`gamead_core.times.clock_utc` without the date. Pure."""
    return clock_utc(epoch, epoch)


def short_time(value: Any) -> str:
    """The clock part of an ISO 8601 time: ``2024-05-01T12:34:56.789Z`` → ``12:34:56`` (``-`` for none)."""
    if not value:
        return "-"
    text = str(value)
    return text[11:19] if len(text) >= 19 and text[10] in "T " else text


def replay_count(entry: Mapping[str, Any]) -> str | None:
    """How often a record or DLQ entry says its ad was replayed from the DLQ: ``replays`` (``"2"``), ``"?"`` when
    it has a ``replayOf`` but no ``replays`` (replayed by older code, which kept no count: attack29a F10, it read
    as never replayed), None when never. Pure."""
    if entry.get("replays"):
        return str(entry["replays"])
    return "?" if entry.get("replayOf") is not None else None
