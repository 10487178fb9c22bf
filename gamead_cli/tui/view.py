"""What one refresh fetched (:class:`Snapshot`) and the rich-text snapshot printed by ``gamead top --once``,
with the nodes table and legends it shares with ``gamead workers``. The figures, rows and titles it shows are
built by ``view_figures``, ``view_queue``, ``view_header``, ``view_tables`` and ``view_audit``: no I/O and no
Textual here, so the TUI and the one-shot view agree and are tested alike.

Every figure shown comes from the API's answers (ages are computed by the API), so the same payload always
renders the same screen.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.console import Group, RenderableType
from rich.text import Text

from gamead_cli.fitted import FittedTable
from gamead_cli.formats import age
from gamead_cli.tui.view_audit import audit_table
from gamead_cli.tui.view_figures import num, spark
from gamead_cli.tui.view_header import HEADER_COMPACT_BELOW, autoscaler_text, registry_unread, summary_text
from gamead_cli.tui.view_queue import (
    LEVEL_CELLS,
    history_span,
    level_rows,
    metric_rows,
    metrics_title,
    oldest,
    queue_title,
    trend_reach,
    wait_p95_text,
)
from gamead_cli.tui.view_tables import (
    DLQ_COLUMNS,
    DLQ_DROP,
    NODE_COLUMNS,
    NODE_DROP,
    dlq_row,
    dlq_summary,
    node_row,
)
from gamead_core.rate_window import span
from gamead_core.safe_text import shown_tree


@dataclass(frozen=True)
class Snapshot:
    """Everything one refresh fetched. ``dlq`` is None when the DLQ could not be read (``dlq_error`` says why)."""

    stats: Mapping[str, Any] | None = None
    nodes: Sequence[Mapping[str, Any]] = ()
    dlq: Mapping[str, Any] | None = None
    dlq_error: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    audit: Mapping[str, Any] | None = None  #: the last operator actions (``GET /v1/audit``)
    audit_error: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"stats": self.stats, "workers": list(self.nodes), "dlq": self.dlq, "dlqError": self.dlq_error,
                "audit": self.audit, "auditError": self.audit_error}


#: what each figure of the one-shot queue table is (``gamead top --once``; the dashboard's help says the same)
QUEUE_LEGEND: dict[str, str] = {
    "PENDING": "ads never delivered", "ACK-P": "ack pending, delivered and not yet acknowledged",
    "REDEL": "redelivered", "OLDEST": "age of the oldest waiting ad",
    "MAX WAIT": "the level's promised wait (its aging horizon; OLDEST is marked ! past it, and red)",
    "WAIT P95": "queue wait over the last minute (≈: estimated from histogram buckets; red: over MAX WAIT; "
                "?: its bucket straddles MAX WAIT, so over or not is unknown)"}


#: what each figure of the nodes table is (``gamead workers``, ``gamead top --once``)
NODES_LEGEND: dict[str, str] = {
    "STATE": "late = heartbeat overdue (2.5 beats), stuck = silent past registry.ttl or no progress, "
             "gone = its entry expired (listed a while, may still hold ads), quiet = takes no new ad until resumed",
    "UP": "time since the process started (a restarted node keeps its id: its counts start again)",
    "IN-FL": "slots busy / slots", "COMPLETED": "ads completed since the process started",
    "FAILED": "failed analysis attempts (retried or dead-lettered) since the process started", "PROC P95": "analysis time, last minute",
    "HEARTBEAT": "age of its last heartbeat",
    "LAST ERROR": "the latest error there: an analysis's (counted in FAILED) or the worker's own, named by its kind "
                  "(storage: a store it could not write, dlq_full: …), which FAILED does not count"}


#: what the cryptic columns of the DLQ table are (``gamead top --once``; newcomer56: ``P`` and ``ATT`` were unsaid)
DLQ_LEGEND: dict[str, str] = {"P": "priority (1 most urgent … 5 least)",
                              "ATT": "analysis attempts"}


class Legend:
    """The legend under a :class:`FittedTable`: ``LABEL: meaning`` of each column of ``entries`` the table shows at
    the width both are drawn at, joined by `` · `` (dim), so a column a narrow terminal dropped is never explained
    and every column shown that ``entries`` knows is (reviewer V10, N6: the legend told ``PROC P95`` after that
    column had given way to ``LAST ERROR``). Pure given the width."""

    def __init__(self, table: FittedTable, entries: Mapping[str, str]) -> None:
        self.table, self.entries = table, entries

    def text(self, width: int) -> Text:
        """The legend of the columns the table shows at ``width`` cells."""
        shown = [c for c in self.table.columns_for(width) if c in self.entries]
        return Text(" · ".join(f"{c}: {self.entries[c]}" for c in shown), style="dim")

    def __rich_console__(self, console: Any, options: Any) -> Any:
        yield self.text(options.max_width)

    def prose(self, width: int) -> Text:
        """The legend as one text for a pipe (:func:`gamead_cli.output.emit` prints it unwrapped: attack29a F7)."""
        return self.text(width)


class HeaderLine:
    """``gamead top --once``'s first line as the live dashboard's header is at the width it is drawn at
    (:func:`summary_text`: compact under :data:`HEADER_COMPACT_BELOW` cells, whole fields dropped to fit), so a
    terminal never wraps it mid-field (polish47: at 80 columns ``NATS`` ended the first line, ``gamead_embedded
    v2.15.1`` began the next); to a pipe (:meth:`prose`) every field, on one line. ``replaying``: the recording's
    file name, said at every width (``REPLAY incident.jsonl``), as the live dashboard says it: a compact line drops
    the address."""

    def __init__(self, stats: Mapping[str, Any] | None, api_url: str, nodes: Any, replaying: str | None) -> None:
        self.stats, self.api_url, self.nodes, self.replaying = stats, api_url, nodes, replaying

    def __rich_console__(self, console: Any, options: Any) -> Any:
        width = options.max_width
        yield summary_text(self.stats, self.api_url, nodes=self.nodes, compact=width < HEADER_COMPACT_BELOW,
                           width=width, replaying=self.replaying)

    def prose(self, _width: int) -> Text:
        return summary_text(self.stats, self.api_url, nodes=self.nodes, replaying=self.replaying)


def shown_snapshot(snap: Snapshot) -> Snapshot:
    """``snap`` with every text escaped where it would not show as itself (:func:`gamead_core.safe_text.shown_tree`):
    what ``gamead top --once`` renders (its ``-o json`` keeps the texts as the API sent them)."""
    return Snapshot(stats=shown_tree(snap.stats), nodes=shown_tree(list(snap.nodes)), dlq=shown_tree(snap.dlq),
                    dlq_error=shown_tree(snap.dlq_error), extra=shown_tree(dict(snap.extra)),
                    audit=shown_tree(snap.audit), audit_error=shown_tree(snap.audit_error))


def snapshot_view(snap: Snapshot, api_url: str, width: int = 30, replaying: str | None = None) -> RenderableType:
    snap = shown_snapshot(snap)
    stats = snap.stats
    parts: list[RenderableType] = [HeaderLine(stats, api_url, snap.nodes, replaying)]
    back = span(history_span(stats))

    levels = level_rows(stats)
    spark_label = f"PENDING, LAST {back}"  # "56 s", "2 min": the unit as written (".upper()" made it "56 S")
    queue = FittedTable(
        ("P", "PENDING", "ACK-P", "REDEL", "OLDEST", "MAX WAIT", "WAIT P95", spark_label),
        [(f"P{r.priority}", *(num(n, LEVEL_CELLS[c]) for n, c in ((r.pending, "PENDING"), (r.ack_pending, "ACK-P"),
                                                               (r.redelivered, "REDEL"))),
          Text(oldest(r), style="bold red" if r.late else ""), age(r.horizon), wait_p95_text(r), "")
         for r in levels],
        flex=spark_label, flex_max=width, title=queue_title(stats, history_span(stats)),
        drop=("REDEL", "WAIT P95", "MAX WAIT"),
        right=("PENDING", "ACK-P", "REDEL", "OLDEST", "MAX WAIT", "WAIT P95"),
        fill=lambda w: [Text(spark(r.history, w), style="red" if r.late else "cyan") for r in levels])
    parts += [Text(""), queue, Legend(queue, QUEUE_LEGEND)]

    rows = metric_rows(stats)
    reach, trend_label = trend_reach(stats)  # the title's window while the history is no longer than it
    metrics = FittedTable(
        ("", "VALUE", " ", trend_label),
        [(m.label, m.text, Text(m.note, style="dim"), "") for m in rows],
        flex=trend_label, flex_max=width, drop=(" ",), right=("VALUE",),
        title=f"{metrics_title(stats)} (ack pending: now)",
        fill=lambda w: [Text(spark(m.history[-reach:] if reach else [], w), style="cyan") for m in rows])
    parts += [Text(""), metrics]

    nodes = nodes_table(snap.nodes, unread=registry_unread(stats))
    parts += [Text(""), nodes]
    if snap.nodes:
        parts.append(Legend(nodes, NODES_LEGEND))
    parts += [Text(""), dlq_summary(stats, snap.dlq, snap.dlq_error)]
    items = [e for e in list((snap.dlq or {}).get("items") or [])[:10] if isinstance(e, Mapping)]
    if items:
        dead = FittedTable(DLQ_COLUMNS, [dlq_row(e) for e in items], flex="MESSAGE", drop=DLQ_DROP, flex_max=60)
        parts += [dead, Legend(dead, DLQ_LEGEND)]
    parts += [Text(""), Text("audit · last operator actions", style="bold"),
              audit_table(snap.audit, snap.audit_error, header=True, limit=5)]
    parts += [Text(""), autoscaler_text(stats)]
    return Group(*parts)


def nodes_table(nodes: Iterable[Mapping[str, Any]], title: str | None = "nodes", *,
                unread: str | None = None) -> FittedTable:
    """One row per node; every label and id whole: an empty LAST ERROR goes first, then the last error gives
    way down to its label, then the columns of :data:`NODE_DROP` in order, the heartbeat last (stuck nodes are told
    by it). ``unread``: why the API has not read the registry yet (:func:`registry_unread`), said instead of "no live
    nodes"."""
    rows = [node_row(n) for n in nodes]
    return FittedTable(NODE_COLUMNS, rows, flex="LAST ERROR", title=title,
                       drop=NODE_DROP,
                       caption=None if rows else unread or "no live nodes",
                       right=("UP", "IN-FL", "COMPLETED", "FAILED", "PROC P95", "HEARTBEAT"))
