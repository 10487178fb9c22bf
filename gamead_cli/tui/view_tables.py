"""The rows of the nodes and dead-letter tables (the dashboard's and ``gamead top --once``'s), the DLQ summary
line and the details of one node or entry. Pure: no I/O, no Textual."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from rich.cells import cell_len
from rich.text import Text

from gamead_cli.cell_text import fit_fields
from gamead_cli.formats import age, ago, clip, month_time, plain, time_column
from gamead_cli.tui.view_details import details_view  # noqa: F401 - the dashboard opens details from here
from gamead_cli.tui.view_figures import ms, num

#: node state → rich style (the one place these colours are chosen; TCSS styles everything else)
STATE_STYLES: dict[str, str] = {"ok": "green", "idle": "cyan", "draining": "yellow", "late": "yellow",
                                 "quiet": "magenta", "stuck": "bold red", "gone": "bold red"}
#: the node states counted apart beside a node count (``gamead workers``' footer, top's header and nodes title), in
#: the order they are said
NOTED_STATES = ("quiet", "late", "stuck", "gone")


def node_row(node: Mapping[str, Any]) -> tuple[Text, ...]:
    """ID, ROLE, STATE, UP (since its process started), IN-FL (slots), COMPLETED (its ``processed``: ads completed),
    FAILED (failed attempts), PROC P95 (processing), HEARTBEAT (ago), LAST ERROR. A count no wider than its label
    (``12M``, not ``12,345,678``: :func:`~gamead_cli.tui.view_figures.num`; tui43), so a long-lived worker's
    does not widen its column and push LAST ERROR and HEARTBEAT out of a narrow table."""
    state = str(node.get("state") or "?")
    proc = node.get("processingMs") or {}
    worker = node.get("role") == "worker"  # an API node analyses nothing: "-", not 0, as IN-FL
    in_flight = f"{node.get('inFlight', 0)}/{node.get('concurrency', 0)}" if worker else "-"
    failed = node.get("failed") or 0
    return (
        plain(node.get("id", "?")),
        plain(node.get("role", "?")),
        Text(state, style=STATE_STYLES.get(state, "")),
        Text(age(node.get("uptimeSeconds")), justify="right"),
        Text(in_flight, justify="right"),
        Text(num(node.get("processed", 0), len("COMPLETED")) if worker else "-", justify="right"),
        Text(num(failed, len("FAILED")) if worker else "-", justify="right", style="red" if failed and worker else ""),
        Text(ms(proc.get("p95")), justify="right"),
        Text(ago(node.get("heartbeatAgeSeconds")), justify="right"),
        Text(clip(node.get("lastError"), 40), style="dim"),
    )


#: a node's counts of analyses: an API node's are 0 on the wire, though it analyses nothing
WORKER_COUNTS = ("concurrency", "inFlight", "processed", "failed", "dead")


def node_details(node: Mapping[str, Any]) -> Any:
    """The details of one node (``enter`` on its row): :func:`details_view`, an API node's analysis counts as ``-``
    as in its row (regress41: they read ``concurrency 0``, ``completed ads 0`` … beside the row's ``-``). Pure."""
    if node.get("role") == "worker":
        return details_view(node)
    return details_view({k: None if k in WORKER_COUNTS else v for k, v in node.items()})


NODE_COLUMNS = ("ID", "ROLE", "STATE", "UP", "IN-FL", "COMPLETED", "FAILED", "PROC P95", "HEARTBEAT", "LAST ERROR")
#: the nodes' columns a narrow table leaves out first, in order (after an empty one), ``gamead top --once``'s,
#: ``gamead workers``' and the live nodes panel's alike: liveness outlasts detail. The last error, a detail
#: (``enter`` on a node shows it whole), goes before the counts, and HEARTBEAT (stuck and late nodes are told by
#: it) outlasts them all but ID, STATE and IN-FL: at 60 columns ``--once`` kept a cut
#: ``LAST ERROR`` and dropped HEARTBEAT, its LAST ERROR being the flex column last from the right (words57)
NODE_DROP = ("PROC P95", "UP", "LAST ERROR", "FAILED", "COMPLETED", "ROLE", "HEARTBEAT")


def dlq_id(entry: Mapping[str, Any]) -> str:
    """A DLQ entry's ad id: ``adId`` (recordings of an older gamead also carried it as ``id``); "" if none."""
    return str(entry.get("adId") or entry.get("id") or "")


def dlq_row(entry: Mapping[str, Any]) -> tuple[Text, ...]:
    """ID, P, ATT, ERROR, MESSAGE, DEAD AT (the mark column is added by the table)."""
    return (
        plain(dlq_id(entry) or "?"),
        Text(num(entry.get("priority")), justify="right"),
        Text(num(entry.get("attempts")), justify="right"),
        Text(str(entry.get("errorClass") or "?"), style="red"),
        plain(clip(entry.get("errorMessage"), 40)),
        Text(month_time(entry.get("deadAt"))),
    )


DLQ_COLUMNS = ("ID", "P", "ATT", "ERROR", "MESSAGE", time_column("DEAD AT"))
#: the DLQ columns a narrow table leaves out first, in order (MESSAGE, the flex column, shrinks before)
DLQ_DROP = (time_column("DEAD AT"), "ATT")


def error_groups(items: Iterable[Mapping[str, Any]]) -> list[tuple[str, int]]:
    """``[(errorClass, count)]``, most frequent first."""
    counts = Counter(str(i.get("errorClass") or "?") for i in items)
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


def dlq_title(dlq: Mapping[str, Any] | None) -> str:
    """The DLQ pane's title: ``dead letters``, and ``· as of 12s ago`` when the page shown is a recent answer the API
    kept (``GET /v1/dlq`` ``ageSeconds`` > 0: watchers share a page, :mod:`gamead_core.api.shared_reads`), so a
    page that lags the DLQ's size says so (outage38; dlq37 put ``ageSeconds`` in ``top --once -o json`` only). Pure."""
    seconds = (dlq or {}).get("ageSeconds") if isinstance(dlq, Mapping) else None
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds > 0:
        return "dead letters"
    return f"dead letters · as of {ago(seconds)}"


def dlq_summary(stats: Mapping[str, Any] | None, dlq: Mapping[str, Any] | None, error: str | None) -> Text:
    size_ = ((stats or {}).get("dlq") or {}).get("size")
    if size_ is None and dlq is not None:
        size_ = dlq.get("inDlq", dlq.get("total"))  # (a recording of an older gamead: total was the size)
    text = Text("DLQ ", style="bold")
    text.append(f"{num(size_)} entr{'y' if size_ == 1 else 'ies'}", style="bold red" if size_ else "green")
    section = (stats or {}).get("dlq") or {}
    if section.get("full"):  # at dlq.max_msgs: ads that fail for good wait queued (attack31a F5)
        text.append(f"  FULL (dlq.max_msgs {num(section.get('maxMsgs'))}): failing ads wait queued; free room",
                    style="bold red")
    if error:
        text.append(f"  ({error})", style="yellow")
        return text
    items = list((dlq or {}).get("items") or [])
    if items:
        shown = len(items)
        kept = dlq_title(dlq).removeprefix("dead letters")  # " · as of 12s ago": a page the API kept (regress38 F2)
        text.append(f"  · latest {shown}{kept}: ", style="dim")
        for i, (cls, n) in enumerate(error_groups(items)[:5]):
            if i:
                text.append(" · ", style="dim")
            text.append(cls, style="red")
            text.append(f" ×{n}")
    return text


def border_labels(title: str, filter_text: str, room: int, *, bottom: bool) -> tuple[str, str]:
    """A filtered panel's border: ``(title, subtitle)`` for a ``title`` (fields joined by `` · ``) and the table's
    ``filter_text``, in ``room`` cells per label. The filter is ``filter: wor`` in the bottom border; a panel with
    none (a short terminal's: 80x24) says it after the title, dropping the title's later fields first
    (``nodes · filter: wor``). Whole or not at all (fit_fields's rule, regress41 F7): too long, it is ``filtered``;
    no room even for that, not shown. At 80x24 a filter in effect was shown nowhere (regress41b). Pure."""
    if not filter_text:
        return title, ""
    head, *rest = title.split(" · ")
    for note in (f"filter: {filter_text}", "filtered"):
        if bottom and cell_len(note) <= room:
            return title, note
        if not bottom and cell_len(f"{head} · {note}") <= room:
            fields = [(Text(head), 0), *[(Text(f" · {r}"), 2) for r in rest], (Text(f" · {note}"), 1)]
            return fit_fields(fields, room).plain, ""
    return title, ""
