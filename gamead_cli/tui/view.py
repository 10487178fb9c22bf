"""Pure presentation of the dashboard's data: numbers → short strings, payloads → rows, and the rich-text
snapshot printed by ``gamead top --once``. No I/O and no Textual here, so the TUI and the one-shot view
agree and are tested alike.

Every figure shown comes from the API's answers (ages are computed by the API), so the same payload always
renders the same screen.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from gamead_cli.fitted import FittedTable
from gamead_cli.inputs import strict_dumps
from gamead_cli.output import (  # noqa: F401 - re-exported to the TUI
    age, ago, byte_size, clip, plain, short_datetime, short_time, span, time_column, window_words)
from gamead_core.safe_text import shown_tree

LEVELS = (1, 2, 3, 4, 5)
SPARK_CHARS = "▁▂▃▄▅▆▇█"

#: node state → rich style (the one place these colours are chosen; TCSS styles everything else)
STATE_STYLES: dict[str, str] = {"ok": "green", "idle": "cyan", "draining": "yellow", "late": "yellow",
                                 "stuck": "bold red", "gone": "bold red"}


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


# --- numbers ---------------------------------------------------------------------------------------------


def num(value: Any) -> str:
    return "-" if value is None else f"{value:,}" if isinstance(value, int) else str(value)


def rate(per_sec: float | None) -> str:
    if per_sec is None:
        return "-"
    return f"{per_sec:,.1f}/s" if per_sec < 1000 else f"{per_sec / 1000:,.1f}k/s"


def ms(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 1:
        return f"{value:.2f}ms"
    if value < 1000:
        return f"{value:.0f}ms" if value >= 10 else f"{value:.1f}ms"
    return f"{value / 1000:.2f}s"


def approx_ms(value: float | None) -> str:
    """An estimate read off histogram buckets (ms), as ``≈31s`` / ``≈400ms`` / ``≈0.38ms``: ``≈`` and 2
    significant digits, all a bucket supports (``ms()`` would print ``31.03s`` as if exact)."""
    if value is None:
        return "-"
    if value <= 0:
        return "≈0ms"
    shown = round(value, 1 - math.floor(math.log10(value)))
    return f"≈{shown:g}ms" if shown < 1000 else f"≈{shown / 1000:g}s"


Verdict = Literal["within", "over", "unsure"]


def wait_verdict(p95_ms: float | None, horizon_s: float | None, estimate: Mapping[str, Any] | None) -> Verdict:
    """Is a level's queue-wait p95 (ms, a bucket estimate) over its MAX WAIT (``horizon_s``)? ``over`` only
    when the whole bucket holding it (``estimate.bucketMs.p95``) lies above MAX WAIT; ``within`` when the
    estimate and its bucket lie below, or when nothing observed (``estimate.observedMs``) exceeded MAX WAIT;
    else ``unsure`` (the bucket straddles MAX WAIT: the true p95 may be on either side)."""
    if p95_ms is None or horizon_s is None:
        return "within"
    limit = horizon_s * 1000
    est = estimate if isinstance(estimate, Mapping) else {}
    observed = est.get("observedMs")
    if isinstance(observed, list) and len(observed) == 2 and isinstance(observed[1], (int, float)) \
            and observed[1] <= limit:
        return "within"
    bucket = (est.get("bucketMs") or {}).get("p95") if isinstance(est.get("bucketMs"), Mapping) else None
    if isinstance(bucket, list) and len(bucket) == 2 and isinstance(bucket[0], (int, float)):
        hi = bucket[1] if isinstance(bucket[1], (int, float)) else math.inf
        if bucket[0] >= limit:
            return "over"
        return "within" if hi <= limit else "unsure"
    return "unsure" if p95_ms > limit else "within"


def wait_p95_text(row: LevelRow) -> Text:
    """A level's WAIT P95 cell: ``≈31s``; red when over its MAX WAIT, ``≈56s?`` in yellow when unsure."""
    verdict = wait_verdict(row.wait_p95, row.horizon, row.wait_estimate)
    shown = approx_ms(row.wait_p95) + ("?" if verdict == "unsure" else "")
    return Text(shown, style={"over": "bold red", "unsure": "yellow"}.get(verdict, ""))


def series(values: Iterable[Any] | None) -> list[float]:
    """A history series with gaps (None) as zeros, ready for a sparkline."""
    return [float(v) if isinstance(v, (int, float)) else 0.0 for v in (values or [])]


def spark(values: Sequence[float], width: int = 30, *, relative: bool = False) -> str:
    """A one-line sparkline of the last values, each cell the max of its bucket (as Textual's widget). The
    lowest bar is 0 (``relative=False``) or the smallest value shown (``relative=True``: the smallest of all
    ``values``, Textual's ``Sparkline`` scale: the shape of a series that moves little around a large value)."""
    if not values:
        return ""
    values = list(values)
    low = min(values) if relative else 0.0  # of every value, as Textual's: a bucket shows its max above it
    if len(values) > width:
        step = len(values) / width
        values = [max(values[int(i * step): max(int((i + 1) * step), int(i * step) + 1)]) for i in range(width)]
    top = max(values) - low
    if top <= 0:
        return SPARK_CHARS[0] * len(values)
    half = 0.0 if relative else 0.5  # relative: rounded down, as Textual's
    return "".join(SPARK_CHARS[min(len(SPARK_CHARS) - 1, int((v - low) / top * (len(SPARK_CHARS) - 1) + half))]
                   for v in values)


# --- payload → rows ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LevelRow:
    priority: int
    pending: int | None
    ack_pending: int | None
    redelivered: int | None
    oldest: float | None
    horizon: float | None
    late: bool
    history: list[float]
    wait_p95: float | None = None  #: ms, queue wait of the level's ads over the last minute (fleet histogram)
    wait_estimate: Mapping[str, Any] | None = None  #: ``waitP95Estimate``: the bucket and range it lies in


def level_rows(stats: Mapping[str, Any] | None) -> list[LevelRow]:
    queue = (stats or {}).get("queue") or {}
    by_level = {lv.get("priority"): lv for lv in queue.get("levels") or [] if isinstance(lv, Mapping)}
    hist = ((stats or {}).get("history") or {}).get("pending") or {}
    rows = []
    for level in LEVELS:
        lv = by_level.get(level, {})
        rows.append(LevelRow(
            priority=level,
            pending=lv.get("pending"),
            ack_pending=lv.get("ackPending"),
            redelivered=lv.get("redelivered"),
            oldest=lv.get("oldestAgeSeconds"),
            horizon=lv.get("agingHorizonSeconds"),
            late=bool(lv.get("overHorizon")),
            history=series(hist.get(str(level))),
            wait_p95=lv.get("waitP95Ms"),
            wait_estimate=lv.get("waitP95Estimate"),
        ))
    return rows


def level_text(row: LevelRow, *, compact: bool = False) -> str:
    """``P5     177     0     2    47s   40s``: pending (never delivered), ack pending, redelivered, the oldest
    ad's age (``47s!`` past the promised wait), the level's promised maximum wait (its aging horizon, from the API's settings) and the level's
    queue-wait p95 of the last minute (``waitP95Ms``, from the workers' histograms); ``compact`` (a narrow panel)
    leaves out the redelivered count and the p95 (the panel's title keeps the fleet's)."""
    redel = "" if compact else f" {num(row.redelivered):>5}"
    p95 = "" if compact else f" {wait_p95_text(row).plain:>6}"
    return (f"P{row.priority} {num(row.pending):>7} {num(row.ack_pending):>5}{redel} "
            f"{oldest(row):>6} {age(row.horizon):>5}{p95}")


def oldest(row: LevelRow) -> str:
    """The oldest waiting ad's age, ``47s!`` past the level's promised wait (``overHorizon``): marked in the text,
    not by colour alone (a pipe, an SSH log, ``NO_COLOR`` show no red). Pure."""
    return age(row.oldest) + ("!" if row.late else "")


def partitions_note(stats: Mapping[str, Any] | None) -> str:
    """`` · 3 partitions`` when the queue spreads over several work streams (``queue.partitions``; the levels
    shown are summed over them), else ""."""
    n = ((stats or {}).get("queue") or {}).get("partitions")
    return f" · {n} partitions" if isinstance(n, int) and n > 1 else ""


def unreadable_note(stats: Mapping[str, Any] | None) -> str:
    """`` · P1,P3 unreadable (nats: timeout)`` when ``/v1/stats`` could not read some levels (``unreadableLevels``:
    their figures show "-"), with the first one's ``error``; else ""."""
    queue = (stats or {}).get("queue") or {}
    unreadable = [lv for lv in queue.get("unreadableLevels") or [] if isinstance(lv, int)]
    if not unreadable:
        return ""
    why = next((lv.get("error") for lv in queue.get("levels") or []
                if isinstance(lv, Mapping) and lv.get("priority") == unreadable[0]), None)
    return f" · {','.join(f'P{lv}' for lv in unreadable)} unreadable" + (f" ({why})" if why else "")


def level_header(*, compact: bool = False) -> str:
    redel = "" if compact else f" {'REDEL':>5}"
    p95 = "" if compact else f" {'P95':>6}"
    return f"{'':2} {'PENDING':>7} {'ACK-P':>5}{redel} {'OLDEST':>6} {'MAX':>5}{p95}  DEPTH"


LEVEL_HEADER = level_header()
#: a queue panel narrower than this many cells shows the compact level rows (no REDEL)
LEVEL_COMPACT_BELOW = 56


def queue_title(stats: Mapping[str, Any] | None, history_seconds: float, *, compact: bool = False) -> str:
    """The queue panel's title, the live dashboard's and ``gamead top --once``'s alike: ``queue · 3 partitions ·
    wait p95 25ms · depth: last 5 min`` (the partitions when several; the fleet's queue-wait p95 over the last
    minute, ``latency.queueWaitMs.p95``; how far back the depth sparklines reach, ``history_seconds``) and the
    levels that could not be read. ``compact`` (a narrow panel): ``queue (5 min) · wait p95 25ms``."""
    wait = ((stats or {}).get("latency") or {}).get("queueWaitMs") or {}
    p95 = f"wait p95 {approx_ms(wait.get('p95') if isinstance(wait, Mapping) else None)}"
    title = (f"queue ({span(history_seconds)}) · {p95}" if compact
             else f"queue{partitions_note(stats)} · {p95} · depth: last {span(history_seconds)}")
    return title + unreadable_note(stats)  # the levels whose figures show "-", and why


def metrics_title(stats: Mapping[str, Any] | None) -> str:
    """The metrics panel's title, with the windows the figures are really over: ``throughput & latency · last
    minute`` when both are 60 s; ``throughput · last 11 s · latency · last minute`` when the API's rates cover
    less (``rates.windowSeconds``: its sampler restarted 11 s ago), so a rate over 11 s is never called a
    minute's."""
    stats = stats or {}
    rates_w = (stats.get("rates") or {}).get("windowSeconds")
    lat_w = (stats.get("latency") or {}).get("windowSeconds")

    if window_words(rates_w) == window_words(lat_w):
        return f"throughput & latency · {window_words(rates_w)}"
    return f"throughput · {window_words(rates_w)} · latency · {window_words(lat_w)}"


@dataclass(frozen=True)
class MetricRow:
    key: str
    label: str
    value: str
    history: list[float]
    note: str = ""


def metric_rows(stats: Mapping[str, Any] | None) -> list[MetricRow]:
    stats = stats or {}
    rates = stats.get("rates") or {}
    lat = stats.get("latency") or {}
    hist = stats.get("history") or {}
    wait = lat.get("queueWaitMs") or {}
    proc = lat.get("processingMs") or {}

    def pct(p: Mapping[str, Any]) -> str:
        return f"p50 {approx_ms(p.get('p50'))} · p99 {approx_ms(p.get('p99'))}"

    # rates and percentiles are over the last minute (the API's window); "ack pending" is the value now
    return [
        MetricRow("submitted", "submitted", rate(rates.get("submittedPerSec")), series(hist.get("submittedPerSec"))),
        MetricRow("completed", "completed", rate(rates.get("completedPerSec")), series(hist.get("completedPerSec"))),
        # failed attempts that will be retried (attempts: an ad may fail several) apart from ads dead-lettered
        MetricRow("retried", "retried", rate(rates.get("retriedPerSec")), series(hist.get("retriedPerSec"))),
        MetricRow("dead", "dead", rate(rates.get("deadLetteredPerSec")), series(hist.get("deadLetteredPerSec"))),
        MetricRow("wait", "wait p95", approx_ms(wait.get("p95")), series(hist.get("queueWaitP95Ms")), pct(wait)),
        MetricRow("proc", "proc p95", approx_ms(proc.get("p95")), series(hist.get("processingP95Ms")), pct(proc)),
        MetricRow("inflight", "ack pending", num(((stats.get("queue") or {}).get("ackPending"))),
                  series(hist.get("ackPending"))),
    ]


def summary_text(stats: Mapping[str, Any] | None, api_url: str, *, paused: bool = False,
                 compact: bool = False, readonly: bool = False, doctor: Text | None = None,
                 replaying: str | None = None) -> Text:
    """The header line: API, nodes, workers, NATS (server, version, storage used; ``compact`` for terminals
    under 100 columns); ``READ-ONLY`` when the dashboard offers no actions (``gamead top --readonly``),
    ``REPLAY <file>`` when it plays a recording, and ``doctor``'s last verdict (:func:`doctor_text`) once run."""
    text = Text()
    text.append("gamead ", style="bold")
    if readonly:  # first: a narrow terminal cuts the end of this line
        text.append("READ-ONLY ", style="bold magenta")
    if replaying:
        text.append(f"REPLAY {replaying} ", style="bold cyan")
    if paused:
        text.append("PAUSED ", style="bold yellow")
    if doctor is not None:  # before the API's address: the verdict matters more and the line gets cut
        text.append_text(doctor)
        text.append("  ")
    if not compact:
        text.append(api_url + "  ", style="dim")
    if stats is None:
        text.append("waiting for the first answer…", style="dim")
    else:
        nodes = stats.get("nodes") or {}
        nats = stats.get("nats") or {}
        if registry_unread(stats):  # its counts would say no node beat
            text.append("registry not read yet", style="bold red")
        else:
            text.append(f"{nodes.get('api', 0)} api", style="bold")
            text.append(" · ", style="dim")
            n_workers = nodes.get("workers", 0)
            text.append(f"{n_workers} worker{'' if n_workers == 1 else 's'}", style="bold")
            text.append(f" ({nodes.get('inFlight', 0)}/{nodes.get('concurrency', 0)} slots busy)", style="dim")
        for word, style in (("late", "yellow"), ("stuck", "bold red"), ("gone", "bold red")):
            count = _count(nodes, word) + _count(nodes, f"api{word.title()}")  # workers' and API nodes'
            if count:  # late: heartbeat overdue; gone: its entry expired (not counted above), as the footer
                text.append(f" {count} {word}", style=style)
        text.append("  NATS ", style="dim")
        if nats.get("connected"):
            name = "" if compact else f"{nats.get('server') or '?'} "
            text.append(f"{name}v{nats.get('version') or '?'}", style="green")
            storage = nats.get("storage") or {}
            if storage:
                used = (storage.get("fileBytes") or 0) + (storage.get("memoryBytes") or 0)
                text.append(f" · {byte_size(used)} stored{_storage_age(stats, storage)}", style="dim")
        else:
            text.append(f"down: {nats.get('error') or 'unknown'}", style="bold red")
        text.append(f"  at {short_time(stats.get('generatedAt'))} UTC", style="dim")
    return text


def _count(nodes: Mapping[str, Any], key: str) -> int:
    """``nodes[key]`` when a count (0 when absent: an older API, or not a number). Pure."""
    value = nodes.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _storage_age(stats: Mapping[str, Any], storage: Mapping[str, Any]) -> str:
    """`` 4.0s ago`` when the storage figure (``nats.storage.sampledAt``: read every ``ACCOUNT_EVERY`` samples) is
    older than the answer (``generatedAt``) by a second or more, else "" (an API without ``sampledAt`` too)."""
    at, now = epoch(storage.get("sampledAt")), epoch(stats.get("generatedAt"))
    return "" if at is None or now is None or now - at < 1 else f" {ago(now - at)}"


def registry_unread(stats: Mapping[str, Any] | None) -> str | None:
    """Why the API has not read the registry yet (``nodes.readAt`` null: its node counts and empty list say
    nothing of the nodes), or None when it has (or the API does not say: an older API). Pure."""
    nodes = (stats or {}).get("nodes") or {}
    if not isinstance(nodes, Mapping) or "readAt" not in nodes or nodes["readAt"] is not None:
        return None
    return str(nodes.get("error") or "registry not read yet")


def autoscaler_text(stats: Mapping[str, Any] | None) -> Text:
    """``autoscaler 2 → 4 replicas  <reason>`` (with leader, override, staleness and error when present)."""
    auto = (stats or {}).get("autoscaler")
    text = Text("autoscaler ", style="bold")
    if not isinstance(auto, Mapping):
        text.append("not running", style="dim")
        return text
    current = auto.get("current", auto.get("currentReplicas"))
    desired = auto.get("desired", auto.get("desiredReplicas"))
    reason = auto.get("reason", auto.get("lastReason"))
    if current is None and desired is None:
        text.append("no decision yet", style="dim")
    else:
        text.append(f"{num(current)} → {num(desired)} replicas",
                    style="bold" if current == desired else "bold yellow")
    if isinstance(auto.get("override"), Mapping):
        text.append("  override", style="bold magenta")
    if auto.get("error"):
        text.append(f"  error: {clip(auto['error'], 60)}", style="bold red")
    elif reason:
        text.append(f"  {clip(reason, 90)}", style="dim")
    if auto.get("stale"):
        text.append("  (stale)", style="yellow")
    leader = auto.get("leader")
    if isinstance(leader, Mapping) and leader.get("id"):
        text.append(f"  leader {leader['id']}", style="dim")
    return text


def node_row(node: Mapping[str, Any]) -> tuple[Text, ...]:
    """ID, ROLE, STATE, UP (since its process started), IN-FL (slots), COMPLETED (its ``processed``: ads completed),
    FAILED (failed attempts), PROC P95 (processing), HEARTBEAT (ago), LAST ERROR."""
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
        Text(num(node.get("processed", 0)) if worker else "-", justify="right"),
        Text(num(failed) if worker else "-", justify="right", style="red" if failed and worker else ""),
        Text(ms(proc.get("p95")), justify="right"),
        Text(ago(node.get("heartbeatAgeSeconds")), justify="right"),
        Text(clip(node.get("lastError"), 40), style="dim"),
    )


NODE_COLUMNS = ("ID", "ROLE", "STATE", "UP", "IN-FL", "COMPLETED", "FAILED", "PROC P95", "HEARTBEAT", "LAST ERROR")


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
        Text(short_datetime(entry.get("deadAt"))[5:]),
    )


DLQ_COLUMNS = ("ID", "P", "ATT", "ERROR", "MESSAGE", time_column("DEAD AT"))


def error_groups(items: Iterable[Mapping[str, Any]]) -> list[tuple[str, int]]:
    """``[(errorClass, count)]``, most frequent first."""
    counts = Counter(str(i.get("errorClass") or "?") for i in items)
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


def dlq_summary(stats: Mapping[str, Any] | None, dlq: Mapping[str, Any] | None, error: str | None) -> Text:
    size_ = ((stats or {}).get("dlq") or {}).get("size")
    if size_ is None and dlq is not None:
        size_ = dlq.get("inDlq", dlq.get("total"))  # (a recording of an older gamead: total was the size)
    text = Text("DLQ ", style="bold")
    text.append(f"{num(size_)} entr{'y' if size_ == 1 else 'ies'}", style="bold red" if size_ else "green")
    if error:
        text.append(f"  ({error})", style="yellow")
        return text
    items = list((dlq or {}).get("items") or [])
    if items:
        shown = len(items)
        text.append(f"  · latest {shown}: ", style="dim")
        for i, (cls, n) in enumerate(error_groups(items)[:5]):
            if i:
                text.append(" · ", style="dim")
            text.append(cls, style="red")
            text.append(f" ×{n}")
    return text


# --- the audit trail ------------------------------------------------------------------------------------------

#: outcome → rich style
OUTCOME_STYLES: dict[str, str] = {"accepted": "cyan", "succeeded": "green", "refused": "bold red", "failed": "red",
                                  "cancelled": "yellow", "interrupted": "yellow"}
AUDIT_COLUMNS = (time_column("TIME"), "WHO", "ACTION", "WHAT", "ADS", "OUTCOME")


_BOUND_FIELDS = {"max_replicas": "maxReplicas", "min_replicas": "minReplicas"}


def audit_selection(record: Mapping[str, Any]) -> str:
    """What an action chose, in a few words: ``3 ids``, ``filter errorClass=Timeout``, ``all``, ``replicas 4
    for 600s``, ``replicas 3 for 60s, clamped to 2 (max_replicas 2)`` (the record's ``effectiveReplicas``)."""
    sel = record.get("selection") or {}
    details = record.get("details") or {}
    mode = sel.get("mode")
    if mode == "ids":
        return f"{sel.get('ids', '?')} ids"
    if mode == "filter":
        flt = sel.get("filter") or {}
        return ("filter " + ", ".join(f"{k}={v}" for k, v in flt.items())) if flt else "filter"
    if mode == "entries":
        return "entries from a file"
    if mode:
        return str(mode)
    if "replicas" in details:
        asked, held = details["replicas"], details.get("effectiveReplicas", details["replicas"])
        text = f"replicas {asked} for {float(details.get('forSeconds') or 0):g}s"
        if held != asked:  # clamped: the record says to what, and by which bound
            bound = "max_replicas" if asked > held else "min_replicas"
            text += f", clamped to {held} ({bound} {details.get(_BOUND_FIELDS[bound], '?')})"
        return text
    if record.get("action") == "job.cancel" and details.get("kind"):
        return f"a {details['kind']} job"
    return "-"


def audit_repeats(record: Mapping[str, Any]) -> Text:
    """``+3 earlier refusals not recorded`` (dim), or an empty text: a record's ``repeats`` counts the caller's
    refusals of any action over ``audit.refusals_per_minute`` since its previous record, not more of this row's
    action (``+18 more`` under a ``scale.set`` read as 18 more of those: attack27 F2)."""
    repeats = record.get("repeats")
    if not repeats:
        return Text("")
    return Text(f"+{repeats} earlier refusal{'' if repeats == 1 else 's'} not recorded", style="dim")


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
        Text("" if ads is None else f"{ads:,} ad{'' if ads == 1 else 's'}", justify="right"),
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
        fit: dict[str, Any] = {"flex": "WHAT", "drop": ("ADS",), "flex_max": 32, "right": ("ADS",),
                               "show_header": header}
        super().__init__(AUDIT_COLUMNS, [audit_row(r) for r in items], **fit)
        self._bare = FittedTable(AUDIT_COLUMNS, [audit_row(r, repeats=False) for r in items], **fit)

    def _noted(self, width: int) -> bool:
        return "OUTCOME" in super().columns_for(width)

    def columns_for(self, width: int) -> list[str]:
        return super().columns_for(width) if self._noted(width) else self._bare.columns_for(width)

    def build(self, width: int) -> Table:
        return super().build(width) if self._noted(width) else self._bare.build(width)


# --- the one-shot view of `gamead top --once` ------------------------------------------------------------------


def history_span(stats: Mapping[str, Any] | None) -> int:
    """Seconds of history in the stats' ``history`` (one point per second): the longest series."""
    hist = (stats or {}).get("history") or {}
    lengths = [len(v) for v in hist.values() if isinstance(v, list)]
    lengths += [len(v) for lv in hist.values() if isinstance(lv, Mapping) for v in lv.values() if isinstance(v, list)]
    return max(lengths, default=0)


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
             "gone = its entry expired (listed a while, may still hold ads)",
    "UP": "time since the process started (a restarted node keeps its id: its counts start again)",
    "IN-FL": "slots busy / slots", "COMPLETED": "ads completed since the process started",
    "FAILED": "failed analysis attempts (retried or dead-lettered) since the process started", "PROC P95": "analysis time, last minute",
    "HEARTBEAT": "age of its last heartbeat", "LAST ERROR": "the latest error an analysis raised there"}


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


def _with_unit(row: MetricRow) -> str:
    """A metric's value with what it counts: ``0.1 ads/s`` (rates of ads), ``1.4 attempts/s`` (retried attempts),
    ``3 ads`` (ack pending); times carry theirs."""
    if row.key == "retried" and row.value.endswith("/s"):
        return row.value[:-2] + " attempts/s"
    if row.key in ("submitted", "completed", "dead") and row.value.endswith("/s"):
        return row.value[:-2] + " ads/s"
    if row.key == "inflight" and row.value != "-":
        return f"{row.value} ads"
    return row.value


def shown_snapshot(snap: Snapshot) -> Snapshot:
    """``snap`` with every text escaped where it would not show as itself (:func:`gamead_core.safe_text.shown_tree`):
    what ``gamead top --once`` renders (its ``-o json`` keeps the texts as the API sent them)."""
    return Snapshot(stats=shown_tree(snap.stats), nodes=shown_tree(list(snap.nodes)), dlq=shown_tree(snap.dlq),
                    dlq_error=shown_tree(snap.dlq_error), extra=shown_tree(dict(snap.extra)),
                    audit=shown_tree(snap.audit), audit_error=shown_tree(snap.audit_error))


def snapshot_view(snap: Snapshot, api_url: str, width: int = 30) -> RenderableType:
    snap = shown_snapshot(snap)
    stats = snap.stats
    parts: list[RenderableType] = [summary_text(stats, api_url)]
    back = span(history_span(stats))

    levels = level_rows(stats)
    spark_label = f"PENDING, LAST {back}"  # "56 s", "2 min": the unit as written (".upper()" made it "56 S")
    queue = FittedTable(
        ("P", "PENDING", "ACK-P", "REDEL", "OLDEST", "MAX WAIT", "WAIT P95", spark_label),
        [(f"P{r.priority}", num(r.pending), num(r.ack_pending), num(r.redelivered),
          Text(oldest(r), style="bold red" if r.late else ""), age(r.horizon), wait_p95_text(r), "")
         for r in levels],
        flex=spark_label, flex_max=width, title=queue_title(stats, history_span(stats)),
        drop=("REDEL", "WAIT P95", "MAX WAIT"),
        right=("PENDING", "ACK-P", "REDEL", "OLDEST", "MAX WAIT", "WAIT P95"),
        fill=lambda w: [Text(spark(r.history, w), style="red" if r.late else "cyan") for r in levels])
    parts += [Text(""), queue, Legend(queue, QUEUE_LEGEND)]

    rows = metric_rows(stats)
    trend_label = f"LAST {back}"
    metrics = FittedTable(
        ("", "VALUE", " ", trend_label),
        [(m.label, _with_unit(m), Text(m.note, style="dim"), "") for m in rows],
        flex=trend_label, flex_max=width, drop=(" ",), right=("VALUE",),
        title=f"{metrics_title(stats)} (ack pending: now)",
        fill=lambda w: [Text(spark(m.history, w), style="cyan") for m in rows])
    parts += [Text(""), metrics]

    nodes = nodes_table(snap.nodes, unread=registry_unread(stats))
    parts += [Text(""), nodes]
    if snap.nodes:
        parts.append(Legend(nodes, NODES_LEGEND))
    parts += [Text(""), dlq_summary(stats, snap.dlq, snap.dlq_error)]
    items = [e for e in list((snap.dlq or {}).get("items") or [])[:10] if isinstance(e, Mapping)]
    if items:
        parts.append(FittedTable(DLQ_COLUMNS, [dlq_row(e) for e in items], flex="MESSAGE",
                                 drop=(time_column("DEAD AT"), "ATT"), flex_max=60))
    parts += [Text(""), Text("audit · last operator actions", style="bold"),
              audit_table(snap.audit, snap.audit_error, header=True, limit=5)]
    parts += [Text(""), autoscaler_text(stats)]
    return Group(*parts)


def nodes_table(nodes: Iterable[Mapping[str, Any]], title: str | None = "nodes", *,
                unread: str | None = None) -> FittedTable:
    """One row per node; every label and id whole: an empty LAST ERROR goes first, then the last error gives
    way down to its label, then PROC P95, then UP, then the heartbeat (stuck nodes are told by it). ``unread``: why the
    API has not read the registry yet (:func:`registry_unread`), said instead of "no live nodes"."""
    rows = [node_row(n) for n in nodes]
    return FittedTable(NODE_COLUMNS, rows, flex="LAST ERROR", title=title,
                       drop=("PROC P95", "UP", "HEARTBEAT", "FAILED", "COMPLETED", "ROLE"),
                       caption=None if rows else unread or "no live nodes",
                       right=("UP", "IN-FL", "COMPLETED", "FAILED", "PROC P95", "HEARTBEAT"))


def details_view(data: Mapping[str, Any]) -> Table:
    """Every field of one node or DLQ entry, nested values as compact JSON."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    for key, value in data.items():
        if isinstance(value, Mapping) and all(not isinstance(v, (Mapping, list)) for v in value.values()):
            shown = " · ".join(f"{k} {'-' if v is None else v}" for k, v in value.items())
        elif isinstance(value, (Mapping, list)):
            shown = strict_dumps(value, indent=2, default=str)
        else:
            shown = "-" if value is None else str(value)
        grid.add_row(Text(str(key)), plain(shown))  # a key from the server is never read as markup
    return grid


# --- drill-down: one level's ads ---------------------------------------------------------------------------------

LEVEL_AD_COLUMNS = ("ID", "STATE", "AGE", "ATT", "WORKER", "TITLE")


def epoch(value: Any) -> float | None:
    """An ISO 8601 time (``…Z``) → epoch seconds; None when absent or unreadable."""
    from datetime import datetime

    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def level_ads(items: Iterable[Mapping[str, Any]]) -> list[tuple[str, tuple[Text, ...]]]:
    """A level's oldest unacknowledged ads (``GET /v1/levels/{level}/oldest`` items, oldest first) as
    ``(id, cells)``: ID, STATE (ack pending: delivered, not acknowledged / pending: never delivered), AGE (since
    queued), ATT (attempts so far), WORKER, TITLE."""
    out = []
    for ad in items:
        if not isinstance(ad, Mapping) or not ad.get("id"):
            continue
        state = "ack pending" if ad.get("state") == "ackPending" else "pending"
        out.append((str(ad["id"]), (
            plain(ad["id"]),
            Text(state, style="cyan" if state == "ack pending" else ""),
            Text(age(ad.get("ageSeconds")), justify="right"),
            Text(num(ad.get("attempts")), justify="right"),
            plain(ad.get("workerId") or "-"),
            plain(clip(ad.get("title"), 40)),
        )))
    return out


def doctor_text(verdict: Mapping[str, Any] | None, error: str | None = None) -> Text:
    """``doctor ok 12:34:56`` / ``doctor 3 problems 12:34:56`` / ``doctor not run (:doctor)`` for the header."""
    text = Text("doctor ", style="dim")
    if error:
        text.append(f"failed: {clip(error, 40)}", style="yellow")
    elif verdict is None:
        text.append("not run (:doctor)", style="dim")
    else:
        problems = verdict.get("problems") or 0
        if verdict.get("ok"):
            text.append("ok", style="green")
        else:
            text.append(f"{problems} problem{'' if problems == 1 else 's'}" if problems else "incomplete",
                        style="bold red" if problems else "yellow")
        text.append(f" at {short_time(verdict.get('checkedAt'))}", style="dim")
    return text


def job_text(job: Mapping[str, Any] | None) -> Text:
    """One line of a running job: ``replay job 01J…: running (acting) · matched 40 · replayed 12 · skipped 0``."""
    if not job:
        return Text("")
    state = str(job.get("state") or "?")
    text = Text(f"{job.get('kind') or 'job'} job ", style="bold")
    text.append(str(job.get("id") or "?"), style="dim")
    text.append(f": {state}", style="green" if state == "succeeded" else "red" if state == "failed" else "cyan")
    if job.get("phase"):
        text.append(f" ({job['phase']})", style="dim")
    for key, value in (job.get("counts") or {}).items():
        text.append(f" · {key} {num(value)}")
    return text
