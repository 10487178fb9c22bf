"""The queue and metrics panels' rows, from ``/v1/stats``: one row per level (pending, ack pending,
redelivered, oldest age, MAX WAIT, wait p95, depth history), the panels' titles, the throughput and latency rows,
and a level's oldest ads (the drill-down). Pure: no I/O, no Textual."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from rich.text import Text

from gamead_cli.formats import age, clip, fit_duration, plain
from gamead_cli.tui.view_figures import approx_ms, estimate_bucket, num, per_second, series, wait_verdict
from gamead_core.rate_window import RATE_WINDOW_SECONDS, span, window_words

LEVELS = (1, 2, 3, 4, 5)


@dataclass(frozen=True)
class LevelRow:
    priority: int
    pending: int | None
    ack_pending: int | None
    redelivered: int | None
    oldest: float | None
    horizon: float | None
    late: bool
    history: list[float | None]
    wait_p95: float | None = None  #: ms, queue wait of the level's ads over the last minute (fleet histogram)
    wait_estimate: Mapping[str, Any] | None = None  #: ``waitP95Estimate``: the bucket and range it lies in


def wait_p95_text(row: LevelRow) -> Text:
    """A level's WAIT P95 cell: ``≈31s``; red when over its MAX WAIT, ``≈56s?`` in yellow when unsure."""
    verdict = wait_verdict(row.wait_p95, row.horizon, row.wait_estimate)
    shown = approx_ms(row.wait_p95, estimate_bucket(row.wait_estimate, "p95")) + ("?" if verdict == "unsure" else "")
    return Text(shown, style={"over": "bold red", "unsure": "yellow"}.get(verdict, ""))


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


#: the cells of a level's count columns, the dashboard's and ``top --once``'s: a count longer is written with its SI
#: step (:func:`~gamead_cli.tui.view_figures.num`: ``12M``; tui43: a PENDING of 12,345,678 shifted the row)
LEVEL_CELLS = {"PENDING": 7, "ACK-P": 5, "REDEL": 5}


def level_text(row: LevelRow, *, compact: bool = False) -> str:
    """``P5     177     0     2    47s   40s``: pending (never delivered), ack pending, redelivered, the oldest
    ad's age (``47s!`` past the promised wait), the level's promised maximum wait (its aging horizon, from the API's
    settings) and the level's queue-wait p95 of the last minute (``waitP95Ms``, from the workers' histograms);
    ``compact`` (a narrow panel) leaves out the redelivered count and the p95 (the panel's title keeps the fleet's).
    Each duration fits its column (:func:`~gamead_cli.formats.fit_duration`: ``11m!``, not ``11m07s!`` shifting MAX
    and P95; tui42 F6), and each count (:data:`LEVEL_CELLS`: ``12M``, not ``12,345,678``; tui43)."""
    pend, ack, red = (LEVEL_CELLS[c] for c in ("PENDING", "ACK-P", "REDEL"))
    redel = "" if compact else f" {num(row.redelivered, red):>{red}}"
    p95 = "" if compact else f" {fit_duration(wait_p95_text(row).plain, 6):>6}"
    return (f"P{row.priority} {num(row.pending, pend):>{pend}} {num(row.ack_pending, ack):>{ack}}"
            f"{redel} {fit_duration(oldest(row), 6):>6} {fit_duration(age(row.horizon), 5):>5}{p95}")


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
    pend, ack, red = (LEVEL_CELLS[c] for c in ("PENDING", "ACK-P", "REDEL"))
    redel = "" if compact else f" {'REDEL':>{red}}"
    p95 = "" if compact else f" {'P95':>6}"
    return f"{'':2} {'PENDING':>{pend}} {'ACK-P':>{ack}}{redel} {'OLDEST':>6} {'MAX':>5}{p95}  DEPTH"


LEVEL_HEADER = level_header()
#: a queue panel narrower than this many cells shows the compact level rows (no REDEL)
LEVEL_COMPACT_BELOW = 56


#: one-second samples asked of ``/v1/stats`` for the depth sparklines, by the live dashboard and ``--once`` alike
HISTORY_POINTS = 300


def history_span(stats: Mapping[str, Any] | None) -> int:
    """Seconds of history in the stats' ``history`` (one point per second): the longest series. Pure."""
    hist = (stats or {}).get("history") or {}
    lengths = [len(v) for v in hist.values() if isinstance(v, list)]
    lengths += [len(v) for lv in hist.values() if isinstance(lv, Mapping) for v in lv.values() if isinstance(v, list)]
    return max(lengths, default=0)


def trend_reach(stats: Mapping[str, Any] | None) -> tuple[int, str]:
    """``(points, "LAST 16 s")``: how far back the metrics panel's sparklines reach and its column's label. While
    the history reaches no further than the rates' window and its ends (a sampler younger than a minute), the
    sparklines are cut to that window and said as the panel's title says it (``rates.windowSeconds``): it said
    ``last 36 s`` over ``LAST 38 s``, two figures for the one span since the sampler started (words57). Pure."""
    points = history_span(stats)
    window = ((stats or {}).get("rates") or {}).get("windowSeconds")
    step = ((stats or {}).get("history") or {}).get("intervalSeconds")
    step = step if isinstance(step, (int, float)) and not isinstance(step, bool) and step > 0 else 1
    if isinstance(window, (int, float)) and not isinstance(window, bool) and 0 < window and \
            points * step <= RATE_WINDOW_SECONDS + 2 * step:
        said = window_words(window).removeprefix("last ")
        return min(points, max(1, round(window / step))), f"LAST {'1 min' if said == 'minute' else said}"
    return points, f"LAST {span(points)}"


def depth_words(history_seconds: float) -> str:
    """``depth: last 5 min``: how far back the depth sparklines reach, as every view says it. Pure."""
    return f"depth: last {span(history_seconds)}"


def queue_title(stats: Mapping[str, Any] | None, history_seconds: float, *, compact: bool = False) -> str:
    """The queue panel's title, the live dashboard's and ``gamead top --once``'s alike: ``queue · 3 partitions ·
    wait p95 25ms · depth: last 5 min`` (the partitions when several; the fleet's queue-wait p95 over the last
    minute, ``latency.queueWaitMs.p95``; how far back the depth sparklines reach, ``history_seconds``) and the
    levels that could not be read. ``compact`` (a narrow panel): ``queue · wait p95 25ms``, the panel's subtitle
    saying :func:`depth_words` (newcomer49: ``queue (5 min)`` said 5 min of nothing named)."""
    wait = ((stats or {}).get("latency") or {}).get("queueWaitMs") or {}
    p95 = f"wait p95 {approx_ms(wait.get('p95'), estimate_bucket(wait, 'p95')) if isinstance(wait, Mapping) else '-'}"
    title = (f"queue · {p95}" if compact
             else f"queue{partitions_note(stats)} · {p95} · {depth_words(history_seconds)}")
    return title + unreadable_note(stats)  # the levels whose figures show "-", and why


def metrics_title(stats: Mapping[str, Any] | None, width: int | None = None) -> str:
    """The metrics panel's title, with the windows the figures are really over: ``throughput & latency · last
    minute`` when both are 60 s; ``throughput · last 11 s · latency · last minute`` when the API's rates cover
    less (``rates.windowSeconds``: its sampler restarted 11 s ago), so a rate over 11 s is never called a
    minute's. Longer than ``width`` cells (None: no limit), ``throughput 11 s · latency 1 min``: at 80 columns
    the border cut it to ``throughput · last 7 s · latency ·…``, the latency's window lost (regress41b F5)."""
    stats = stats or {}
    rates_w, lat_w = (window_words((stats.get(k) or {}).get("windowSeconds")) for k in ("rates", "latency"))
    title = (f"throughput & latency · {rates_w}" if rates_w == lat_w
             else f"throughput · {rates_w} · latency · {lat_w}")
    if width is None or len(title) <= width:
        return title

    def short(words: str) -> str:
        return "1 min" if words == "last minute" else words.removeprefix("last ")

    return f"throughput {short(rates_w)} · latency {short(lat_w)}"


@dataclass(frozen=True)
class MetricRow:
    key: str
    label: str
    value: str  #: the figure: ``12.3``, ``2`` (its :attr:`unit` apart), ``≈15ms`` (a time carries its own)
    history: list[float | None]
    note: str = ""
    unit: str = ""  #: what :attr:`value` counts: ``ads/s``, ``attempts/s``, ``ads``; "" for a time

    @property
    def text(self) -> str:
        """The value with what it counts, as ``gamead top --once`` prints it: ``12.3 ads/s``, ``1.4 attempts/s``,
        ``3 ads``, ``≈15ms``; ``- ads/s`` when not known. Before (units46) the live dashboard printed ``12.3/s`` and
        ``3``: a rate of what, a count of what."""
        return f"{self.value} {self.unit}" if self.unit else self.value


#: the cells of a metric's value in the dashboard's metrics panel: a rate's figure (``999.9T``), a time (``≈2m05s``)
#: and a count (:func:`~gamead_cli.tui.view_figures.num`) are never longer
METRIC_CELLS = 8
#: the cells of a metric's label there: the longest, ``ack pending`` (in 9 its value ended 2 cells right of the
#: others'; tui43)
METRIC_LABEL_CELLS = len("ack pending")
#: the cells of a metric's unit there: the longest, ``attempts/s``
METRIC_UNIT_CELLS = len("attempts/s")


def metric_line(row: MetricRow) -> str:
    """A metric as the live dashboard's metrics panel shows it, in fixed columns (label, value right-aligned, what
    it counts): ``queued          12.3 ads/s     ``, ``ack pending        3 ads       ``; a time (its unit in its
    value: ``wait p95      ≈15ms``) without the unit's column, as its row has its percentiles' note beside it.
    Pure."""
    line = f"{row.label:<{METRIC_LABEL_CELLS}} {row.value:>{METRIC_CELLS}}"
    return f"{line} {row.unit:<{METRIC_UNIT_CELLS}}" if row.unit else line


def metric_rows(stats: Mapping[str, Any] | None) -> list[MetricRow]:
    """The throughput & latency rows of a ``GET /v1/stats`` answer (``gamead top`` and ``--once``): ads queued,
    completed and dead-lettered per second, retried attempts per second (all over the API's last minute), wait and
    processing p95 (ms) and ads ack pending now. The first row is ``queued``: ``submittedPerSec`` is the work
    stream's growth, which DLQ replays add to as submits do (README Glossary)."""
    stats = stats or {}
    rates = stats.get("rates") or {}
    lat = stats.get("latency") or {}
    hist = stats.get("history") or {}
    wait = lat.get("queueWaitMs") or {}
    proc = lat.get("processingMs") or {}

    def est(p: Mapping[str, Any], name: str) -> str:  # ≤0.25ms when in the lowest bucket (approx_ms)
        return approx_ms(p.get(name), estimate_bucket(p, name))

    def pct(p: Mapping[str, Any]) -> str:
        return f"p50 {est(p, 'p50')} · p99 {est(p, 'p99')}"

    # rates and percentiles are over the last minute (the API's window); "ack pending" is the value now.
    # "queued", not "submitted": submittedPerSec is the work stream's growth, DLQ replays included (attack43b F1:
    # 21 ads replayed and none submitted read "submitted 0.3 ads/s")
    return [
        MetricRow("submitted", "queued", per_second(rates.get("submittedPerSec")),
                  series(hist.get("submittedPerSec")), unit="ads/s"),
        MetricRow("completed", "completed", per_second(rates.get("completedPerSec")),
                  series(hist.get("completedPerSec")), unit="ads/s"),
        # failed attempts that will be retried (attempts: an ad may fail several) apart from ads dead-lettered
        MetricRow("retried", "retried", per_second(rates.get("retriedPerSec")), series(hist.get("retriedPerSec")),
                  unit="attempts/s"),
        MetricRow("dead", "dead", per_second(rates.get("deadLetteredPerSec")), series(hist.get("deadLetteredPerSec")),
                  unit="ads/s"),
        MetricRow("wait", "wait p95", est(wait, "p95"), series(hist.get("queueWaitP95Ms")), pct(wait)),
        MetricRow("proc", "proc p95", est(proc, "p95"), series(hist.get("processingP95Ms")), pct(proc)),
        MetricRow("inflight", "ack pending", num(((stats.get("queue") or {}).get("ackPending")), METRIC_CELLS),
                  series(hist.get("ackPending")), unit="ads"),
    ]


# --- drill-down: one level's ads ---------------------------------------------------------------------------------

LEVEL_AD_COLUMNS = ("ID", "STATE", "AGE", "ATT", "WORKER", "TITLE")


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
