"""The audit trail's rows (``GET /v1/audit``): what each operator action chose, its outcome, and the table
fitted to a width (the dashboard's audit panel, ``gamead top --once``, ``gamead audit``). Pure: no I/O, no
Textual."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

from gamead_cli.fitted import FittedTable
from gamead_cli.formats import age, counted, plain, short_time, time_column

#: outcome → rich style
OUTCOME_STYLES: dict[str, str] = {"accepted": "cyan", "succeeded": "green", "refused": "bold red", "failed": "red",
                                  "cancelled": "yellow", "interrupted": "yellow"}
AUDIT_COLUMNS = (time_column("TIME"), "WHO", "ACTION", "WHAT", "ADS", "OUTCOME")


_BOUND_FIELDS = {"max_replicas": "maxReplicas", "min_replicas": "minReplicas"}


def audit_selection(record: Mapping[str, Any]) -> str:
    """What an action chose, in a few words: ``3 ids`` (``1 id``), ``filter errorClass=Timeout``, ``all``, ``replicas 4
    for 600s``, ``replicas 3 for 60s, clamped to 2 (max_replicas 2)`` (the record's ``effectiveReplicas``),
    ``…, replacing an override of 5 workers (by alice)``; a clear: ``removing an override of 5 workers (by alice)``
    or ``none stood``; ``worker local-1`` (quiet, resume)."""
    sel = record.get("selection") or {}
    details = record.get("details") or {}
    mode = sel.get("mode")
    if record.get("action") == "job.takeover":  # which node resumed the job, after which one's lease expired
        return f"from {details.get('fromNode') or '?'} to {details.get('toNode') or '?'}"
    if mode == "ids":  # a count; "1 ids" before newcomer46
        n = sel.get("ids")
        return counted(n if isinstance(n, int) and not isinstance(n, bool) else "?", "id")
    if mode == "filter":
        flt = sel.get("filter") or {}
        return ("filter " + ", ".join(f"{k}={v}" for k, v in flt.items())) if flt else "filter"
    if mode == "entries":
        return "entries from a file"
    if mode:
        return str(mode)
    if "replicas" in details:
        asked, held = details["replicas"], details.get("effectiveReplicas", details["replicas"])
        text = f"replicas {asked} for {age(max(0.0, float(details.get('forSeconds') or 0)))}"
        if held != asked:  # clamped: the record says to what, and by which bound
            bound = "max_replicas" if asked > held else "min_replicas"
            text += f", clamped to {held} ({bound} {details.get(_BOUND_FIELDS[bound], '?')})"
        if isinstance(replaced := details.get("replaces"), dict):
            text += f", replacing {_override(replaced)}"
        return text
    if record.get("action") == "scale.clear" and "removes" in details:  # attack39a F3: which, or none
        removed = details["removes"]
        return f"removing {_override(removed)}" if isinstance(removed, dict) else "none stood"
    if record.get("action") == "job.cancel" and details.get("kind"):
        return f"a {details['kind']} job"
    if str(record.get("action")).startswith("worker.") and details.get("workerId"):  # which one (probe49: "-")
        return f"worker {details['workerId']}"
    return "-"


def _override(wire: Mapping[str, Any]) -> str:
    """``an override of 3 workers (by alice)``: an override's count and who set it, as a record's
    ``replaces``/``removes`` hold it (units46: ``removing 3 (by alice)``, 3 of what)."""
    by = wire.get("setBy")
    return f"an override of {counted(wire.get('replicas', '?'), 'worker')}" + (f" (by {by})" if by else "")


def audit_repeats(record: Mapping[str, Any]) -> Text:
    """``+3 earlier refusals not recorded`` (dim), or an empty text: a record's ``repeats`` counts the caller's
    refusals of any action over ``audit.refusals_per_minute`` since its previous record, not more of this row's
    action (``+18 more`` under a ``scale.set`` read as 18 more of those: attack27 F2)."""
    repeats = record.get("repeats")
    if not repeats:
        return Text("")
    return Text(f"+{counted(repeats, 'earlier refusal')} not recorded", style="dim")


def audit_outcome(record: Mapping[str, Any], *, repeats: bool = True) -> Text:
    """``refused forbidden``, ``succeeded``… in the outcome's colour; with ``repeats``, followed by
    :func:`audit_repeats`."""
    outcome = str(record.get("outcome") or "?")
    text = Text(outcome, style=OUTCOME_STYLES.get(outcome, ""))
    if record.get("code"):
        text.append(f" {record['code']}")
    if repeats and record.get("repeats"):
        text.append(" ").append_text(audit_repeats(record))
    return text


def audit_row(record: Mapping[str, Any], *, repeats: bool = True) -> tuple[Text, ...]:
    """TIME, WHO, ACTION, WHAT, ADS (``3 ads``: the figure says what it is), OUTCOME (with ``repeats``, its note)."""
    ads = record.get("ads")
    return (
        Text(short_time(record.get("at"))),
        plain(record.get("actor") or "?"),
        plain(record.get("action") or "?"),
        plain(audit_selection(record)),
        Text("" if ads is None else counted(ads), justify="right"),
        audit_outcome(record, repeats=repeats),
    )


def audit_table(audit: Mapping[str, Any] | None, error: str | None = None, *,
                header: bool = False, limit: int = 10) -> RenderableType:
    """The last operator actions, newest first (the dashboard's audit panel, ``gamead top --once``). ``error``: why
    they could not be read, already a sentence (``gamead_cli.tui.source``: "audit trail unavailable: …")."""
    if error:
        return Text(error, style="yellow")
    if audit is None:
        return Text("waiting for the first answer…", style="dim")
    items = [r for r in list(audit.get("items") or [])[:limit] if isinstance(r, Mapping)]
    if not items:
        return Text("no operator action recorded", style="dim")
    return _AuditTable(items, header)


class _AuditTable(FittedTable):
    """The audit rows fitted to a width: each refusal's note (:func:`audit_repeats`) in OUTCOME where that column
    stays with it, else the rows without notes (at 80 columns a note would push OUTCOME out)."""

    def __init__(self, items: list[Mapping[str, Any]], header: bool) -> None:
        # narrow, WHAT (the detail, cut to a few cells) goes before OUTCOME: whether the action held (words57)
        fit: dict[str, Any] = {"flex": "WHAT", "drop": ("ADS", "WHAT"), "flex_max": 32, "right": ("ADS",),
                               "show_header": header}
        super().__init__(AUDIT_COLUMNS, [audit_row(r) for r in items], **fit)
        self._bare = FittedTable(AUDIT_COLUMNS, [audit_row(r, repeats=False) for r in items], **fit)

    def _noted(self, width: int) -> bool:
        return "OUTCOME" in super().columns_for(width)

    def columns_for(self, width: int) -> list[str]:
        return super().columns_for(width) if self._noted(width) else self._bare.columns_for(width)

    def build(self, width: int) -> Table:
        return super().build(width) if self._noted(width) else self._bare.build(width)

    def fold(self, encoding: str) -> None:
        super().fold(encoding)
        self._bare.fold(encoding)
