"""Which entries a ``gamead dlq`` command acts on: its options (ad ids, ``--all``, ``--error-class``,
``--message``, ``--priority``, ``--since``, ``--until``) read and checked by the API's own rules before any
request, so that what the API would refuse is bad usage (exit 2)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Annotated, Any

import typer

from gamead_cli.bounds import checked
from gamead_cli.options import ad_id_arg, duration_seconds, job_id_arg
from gamead_core.api.body_caps import MAX_IDS
from gamead_core.bound_text import Range
from gamead_core.config.section import YEARS_10
from gamead_core.durations import FORMS
from gamead_core.errors import GameadError

#: an age ``--since``/``--until`` may say: no DLQ entry or audit record is older than its stream's ``max_age``, at
#: most ten years (``dlq.max_age``, ``audit.max_age``: :data:`gamead_core.config.section.YEARS_10`)
AGE_RANGE = Range(0, YEARS_10, seconds=True)

if TYPE_CHECKING:
    from gamead_cli.client import ApiClient


def parse_when(value: str | None, *, now: datetime | None = None) -> str | None:
    """An age — a duration ago, as :func:`gamead_core.durations.parse_duration` reads it (``2h``, ``2h30m``,
    ``1d4h``, ``90``), ``ago`` after it or not, as the CLI prints ages (``4m05s ago``) — or an ISO-8601 time (no
    offset = UTC) → ISO-8601 UTC. Pure. Raises :class:`GameadError` for anything else (naming both forms), or an
    age too far back to represent."""
    if value is None:
        return None
    now = now or datetime.now(timezone.utc)
    if (ago := age_seconds(value)) is not None:
        try:
            return (now - timedelta(seconds=ago)).isoformat()
        except OverflowError:
            raise GameadError(f"cannot read time {value!r}: that is before the year 1") from None
    from gamead_core.times import read_utc  # the API's own reading: what it would refuse (422) is refused here

    try:
        return read_utc(value).isoformat()
    except ValueError as exc:
        hint = f"; or an age: {FORMS}" if "ISO-8601" in str(exc) else ""
        raise GameadError(f"cannot read time {value!r}: {exc}{hint}") from None


def when_option(value: str | None, flag: str, *, now: datetime | None = None) -> str | None:
    """:func:`parse_when` for the option ``flag`` (``--since``…): an unreadable time is bad usage (exit 2), and so
    is an age past :data:`AGE_RANGE` (``--until must be 0 to 3650d, not 99999d``: polish47, it was taken as
    ``dead before 1753-02-20 …``)."""
    if value is not None and (ago := age_seconds(value)) is not None:
        checked(ago, AGE_RANGE, value, param_hint=flag)
    try:
        return parse_when(value, now=now)
    except GameadError as exc:
        raise typer.BadParameter(exc.message, param_hint=flag) from None


ErrorClassOpt = Annotated[str | None, typer.Option("--error-class", "-e", help="Only this error class.")]
MessageOpt = Annotated[str | None, typer.Option("--message", "-m", help="RE2 regex on the error message.")]
PriorityOpt = Annotated[int | None, typer.Option("--priority", "-p", min=1, max=5, help="Only this priority.")]
SinceOpt = Annotated[str | None, typer.Option("--since", metavar="TIME|AGE", help="Dead at or after: ISO time (UTC "
                                                                  "if no offset) or age (2h, 2h30m, 1d4h).")]
UntilOpt = Annotated[str | None, typer.Option("--until", metavar="TIME|AGE", help="Dead before: ISO time (UTC if no "
                                                                  "offset) or age (2h, 2h30m, 1d4h).")]
IdsArg = Annotated[list[str] | None, typer.Argument(
    metavar="[ID]...", help=f"Ad ids (at most {MAX_IDS:,}); or use --all / filters.")]
AllOpt = Annotated[bool, typer.Option("--all", help="Every entry in the DLQ.")]
DetachOpt = Annotated[bool, typer.Option("--detach", help="Start the job and return at once (follow it with "
                                                          "`gamead dlq jobs JOB --follow`).")]


def message_option(value: str | None) -> str | None:
    """``--message`` as given, checked the way the API checks it (:func:`gamead_core.dlq_pattern.compile_pattern`:
    RE2 syntax, at most ``MAX_PATTERN`` characters; no control character,
    :func:`gamead_core.dlq_pattern.filter_refusal`): a pattern the API would refuse (422) is bad usage, raised as
    ``typer.BadParameter`` (exit 2, README "Exit codes") before any request is sent."""
    if value is None:
        return None
    from gamead_core.dlq_pattern import compile_pattern, filter_refusal  # re2 only: no server stack

    try:
        compile_pattern(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--message") from None
    if (why := filter_refusal("message", value)) is not None:
        raise typer.BadParameter(why, param_hint="--message")
    return value


def error_class_option(value: str | None) -> str | None:
    """``--error-class`` as given, checked by the API's own rule (:func:`gamead_core.dlq_pattern.filter_refusal`:
    at most ``MAX_ERROR_CLASS`` characters, no control character): one the API would refuse (422, or a URL too
    long to send) is bad usage, ``typer.BadParameter`` (exit 2), before any request is sent."""
    from gamead_core.dlq_pattern import filter_refusal

    if (why := filter_refusal("errorClass", value)) is not None:
        raise typer.BadParameter(why, param_hint="--error-class")
    return value


def age_seconds(value: str) -> float | None:
    """The seconds of an age (``2h30m``, ``4m05s ago``: :func:`parse_when`), None if ``value`` is none. Pure."""
    words = value.strip()
    return duration_seconds(words[:-3] if words.lower().endswith("ago") else words)


def has_age(*values: str | None) -> bool:
    """Is one of ``values`` an age (``2h``: resolved against a clock) rather than an ISO time? Pure."""
    return any(value is not None and age_seconds(value) is not None for value in values)


def window_options(since: str | None, until: str | None, *, now: datetime | None = None) -> dict[str, str | None]:
    """``--since``/``--until`` read by :func:`when_option` as of ``now`` (the service's time: an age like ``1h``
    is resolved on it, :func:`on_service_clock`): ``{"since", "until"}`` (ISO, or None). A window that can hold
    nothing (``--since`` not before ``--until``, e.g. ``--since 2h --until 3h``) is bad usage (exit 2). Without
    ``now`` (the usage checked before any request, on this machine's clock) an ISO time and an age are not
    compared: their order depends on the clock the age is resolved on."""
    at = now or datetime.now(timezone.utc)  # one instant for both: `--since 1d --until 1d` is empty, not a microsecond
    start, end = when_option(since, "--since", now=at), when_option(until, "--until", now=at)
    mixed = now is None and has_age(since) != has_age(until)  # an age and an ISO time
    if start is not None and end is not None and not mixed and \
            datetime.fromisoformat(start) >= datetime.fromisoformat(end):
        raise typer.BadParameter(f"--since {since} is not before --until {until}: nothing can match; swap them, or "
                                 "drop one", param_hint="--since")
    return {"since": start, "until": end}


def filter_body(error_class: str | None, message: str | None, priority: int | None, since: str | None,
            until: str | None) -> dict[str, Any]:
    """The ``filter`` of a DLQ request, every option checked before any request (bad usage: exit 2); an age
    (``--since 1h``) resolved on this machine's clock until :func:`on_service_clock` resolves it again."""
    raw = {"errorClass": error_class_option(error_class), "message": message_option(message), "priority": priority,
           **window_options(since, until)}
    return {k: v for k, v in raw.items() if v is not None}


def on_service_clock(client: ApiClient, flt: dict[str, Any], since: str | None, until: str | None) -> dict[str, Any]:
    """``flt`` with its ages (``--since 2m``, ``--until 1h``) resolved on the service's clock
    (:meth:`ApiClient.service_now`: the ``Date`` of the API's answers), not this machine's: a laptop 2 h fast
    turned ``dlq purge --until 1h`` into "everything", entries dead minutes ago included (attack33a F10). ``flt``
    as it is when neither is an age (no request made)."""
    if not has_age(since, until):
        return flt
    window = window_options(since, until, now=client.service_now())
    return {**{k: v for k, v in flt.items() if k not in ("since", "until")},
            **{k: v for k, v in window.items() if v is not None}}


def window_of(flt: Mapping[str, Any] | None) -> dict[str, Any]:
    """The resolved ``since``/``until`` of a filter (ISO times), for the ``-o json`` document of a verb that used
    them; ``{}`` for none. Pure."""
    return {k: flt[k] for k in ("since", "until") if (flt or {}).get(k)}


def checked_ad_id(value: str) -> str:
    """``value`` checked as an ad id, lowercase (:func:`gamead_cli.options.ad_id_arg`)."""
    return ad_id_arg(value) or value


def checked_job_id(value: str) -> str:
    """``value`` checked as a job id, lowercase (:func:`gamead_cli.options.job_id_arg`)."""
    return job_id_arg(value) or value


def selection_body(ids: list[str] | None, everything: bool, flt: dict[str, Any]) -> dict[str, Any]:
    """The request's selection: ``{"ids": [...]}``, ``{"all": true}`` or ``{"filter": {...}}``. Raises
    ``typer.BadParameter`` (exit 2) unless exactly one is given, or for more ids than one request may name
    (:data:`gamead_core.api.body_caps.MAX_IDS`: the API's ``ids`` ``maxItems``; attack44 F2: 2,300 ids were
    sent and refused as 66,723 bytes, a bound said in bytes)."""
    chosen = [bool(ids), everything, bool(flt)]
    if sum(chosen) != 1:
        raise typer.BadParameter("say which entries: ad IDs, --all, or filters (--error-class, --message, "
                                 "--priority, --since, --until), exactly one of these")
    if ids and len(ids) > MAX_IDS:
        raise typer.BadParameter(f"{len(ids):,} ids: at most {MAX_IDS:,} per command (the API's bound); use a "
                                 f"filter, or split the list (xargs -n {MAX_IDS})", param_hint="ID")
    if ids:
        return {"ids": [checked_ad_id(i) for i in ids]}
    return {"all": True} if everything else {"filter": flt}
