"""Numbers → short strings for the dashboard and ``gamead top --once``: counts, rates, milliseconds, the
``≈`` of a histogram estimate and whether a level's wait is over its MAX WAIT, sparklines, ISO times → epoch.
Pure: no I/O, no Textual."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from gamead_core.durations import format_duration
from gamead_core.rate_text import rate_figure

SPARK_CHARS = "▁▂▃▄▅▆▇█"


#: the SI steps a large figure is written in (:func:`num` given a width, :func:`per_second`), largest first
SI_STEPS: tuple[tuple[str, int], ...] = (("T", 10**12), ("G", 10**9), ("M", 10**6), ("k", 10**3))


def num(value: Any, width: int | None = None) -> str:
    """A count as the dashboard and the CLI's tables write it: ``1,234`` (``-`` for None). Given ``width`` (the
    cells of its column), a count whose text is longer is written with its SI step in at most 4 cells (5 past
    999T): ``12,345,678`` → ``12M``, ``1,234,567`` → ``1.2M``, ``10**12`` → ``1.0T``, truncated (never rounded up:
    ``999,999`` is ``999k``), so a fixed column keeps its neighbours in place (tui42 F6: a PENDING of 12,345,678
    in a column of 7 pushed every figure right of it). Pure."""
    text = "-" if value is None else f"{value:,}" if isinstance(value, int) else str(value)
    if width is None or len(text) <= width or not isinstance(value, int) or isinstance(value, bool):
        return text
    return ("-" if value < 0 else "") + _stepped(abs(value), decimals=abs(value) < 10 * _step(abs(value))[1])


def per_second(per_sec: float | None) -> str:
    """The figure of a rate per second, without its unit, written beside what it counts (``12.3 ads/s``:
    :class:`gamead_cli.tui.view_queue.MetricRow`): ``12.3``, ``0.10``; from 1,000 on with its SI step, one decimal,
    truncated: ``1.2k``, ``123.4k``, ``999.9T`` (at most 6 cells; 999.96 is ``999.9``, never ``1,000.0``; before,
    2,000,000/s was ``2,000.0k/s``; under a thousandth ``<0.001``; from 1,000T ``>999T``); ``-`` for None, ``nan``
    or an infinity, ``0.0`` for a negative rate (probe47 F6: ``nan`` raised). Under 1,000 as
    ``gamead scale status`` writes it (:func:`gamead_core.rate_text.rate_figure`: ``0.10``, ``0.022``; polish47:
    ``0.1`` beside its ``0.100``). Pure."""
    if per_sec is None or not math.isfinite(per_sec):
        return "-"
    if per_sec < 1000:
        return rate_figure(min(per_sec, 999.9))
    return _stepped(per_sec, decimals=True) if per_sec < 1000 * SI_STEPS[0][1] else f">999{SI_STEPS[0][0]}"


def _step(value: float) -> tuple[str, int]:
    """The largest SI step of :data:`SI_STEPS` not above ``value`` (≥ 1000). Pure."""
    return next((name, size) for name, size in SI_STEPS if value >= size or size == 10**3)


def _stepped(value: float, *, decimals: bool) -> str:
    """``value`` (≥ 1000) in its SI step, truncated to a tenth (``decimals``) or a unit: ``1.2M``, ``12M``.
    Counted in whole tenths so ``2,300,000`` is ``2.3M``, not a float's ``2.2M``. Pure."""
    name, size = _step(value)
    tenths = int(value * 10 // size)
    return f"{tenths // 10}.{tenths % 10}{name}" if decimals else f"{tenths // 10}{name}"


def ms(value: float | None) -> str:
    """A latency in ms: ``0.38ms``, ``6.6ms``, ``308ms``, ``31.03s``; from a minute on as every duration gamead
    prints (:func:`gamead_core.durations.format_duration`: ``2m05s``, not ``125.30s``; fix35d item 2)."""
    if value is None:
        return "-"
    if value < 1:
        return f"{value:.2f}ms"
    if value < 1000:
        return f"{value:.0f}ms" if value >= 10 else f"{value:.1f}ms"
    return f"{value / 1000:.2f}s" if value < 60_000 else format_duration(value / 1000)


def approx_ms(value: float | None, bucket: Any = None) -> str:
    """An estimate read off histogram buckets (ms), as ``≈31s`` / ``≈400ms`` / ``≈0.38ms``: ``≈`` and 2
    significant digits, all a bucket supports (``ms()`` would print ``31.03s`` as if exact). ``≤0.25ms`` when
    ``bucket`` (:func:`estimate_bucket`: ``[lo, hi]`` ms) starts at 0: all the counts know is that the figure is at
    most ``hi`` (Prometheus' ``le``, or the largest value observed), and an interpolation inside (half the bucket
    when analyses of 0.1-2 ms fell in one of 0-5 ms: ``≈2.5ms``, attack29a F5) is a value nothing measured."""
    if value is None:
        return "-"
    if isinstance(bucket, Sequence) and len(bucket) == 2 and bucket[0] == 0 and _number(bucket[1]) and bucket[1] > 0:
        return f"≤{_sig2(bucket[1], up=True)}"
    if value <= 0:
        return "≈0ms"
    return f"≈{_sig2(value)}"


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _sig2(value: float, *, up: bool = False) -> str:
    """``0.38ms``, ``400ms``, ``31s``: ``value`` (ms, > 0) to 2 significant digits (rounded ``up``: a bound)."""
    digits = 1 - math.floor(math.log10(value))
    shown = math.ceil(round(value * 10**digits, 6)) / 10**digits if up else round(value, digits)
    return f"{shown:g}ms" if shown < 1000 else f"{shown / 1000:g}s" if shown < 60_000 else format_duration(shown / 1000)


def estimate_bucket(p: Any, name: str) -> Any:
    """The ``[lo, hi]`` ms percentile ``name`` is known to lie in: its bucket (``estimate.bucketMs``) of a
    ``/v1/stats`` latency figure or of an estimate itself (a level's ``waitP95Estimate``), ``hi`` lowered to the
    largest value observed (``observedMs``) when that is less; None when absent (an exact figure, an older API)."""
    est = (p.get("estimate") if "bucketMs" not in p else p) if isinstance(p, Mapping) else None
    buckets = est.get("bucketMs") if isinstance(est, Mapping) else None
    found = buckets.get(name) if isinstance(buckets, Mapping) else None
    seen = est.get("observedMs") if isinstance(est, Mapping) else None
    if isinstance(found, list) and len(found) == 2 and isinstance(seen, list) and len(seen) == 2 \
            and _number(seen[1]) and (not _number(found[1]) or seen[1] < found[1]):
        return [found[0], seen[1]]
    return found


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


def series(values: Iterable[Any] | None) -> list[float | None]:
    """A history series ready for a sparkline, its gaps (None: not measured, e.g. while NATS was away or before the
    sampler's previous point) kept as None: :func:`spark` draws them blank, never as a zero."""
    return [float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None for v in (values or [])]


def spark(values: Sequence[float | None], width: int = 30, *, relative: bool = False) -> str:
    """A one-line sparkline of the last values, each cell the max of its bucket (as Textual's widget). The
    lowest bar is 0 (``relative=False``) or the smallest value shown (``relative=True``: the smallest of all
    ``values``, Textual's ``Sparkline`` scale: the shape of a series that moves little around a large value). A
    point not measured (None) is a blank cell, a bucket of them only too: before, a gap was drawn as a zero (the
    lowest bar), a made-up figure (a p95 wait of 0 ms while NATS was away)."""
    if not values:
        return ""
    values = list(values)
    known = [v for v in values if v is not None]
    low = (min(known) if known else 0.0) if relative else 0.0  # of every value, as Textual's: a bucket shows its max
    if len(values) > width:
        step = len(values) / width
        buckets = [values[int(i * step): max(int((i + 1) * step), int(i * step) + 1)] for i in range(width)]
        values = [max((v for v in bucket if v is not None), default=None) for bucket in buckets]
    top = max((v for v in values if v is not None), default=low) - low
    if top <= 0:
        return "".join(" " if v is None else SPARK_CHARS[0] for v in values)
    half = 0.0 if relative else 0.5  # relative: rounded down, as Textual's
    return "".join(" " if v is None else
                   SPARK_CHARS[min(len(SPARK_CHARS) - 1, int((v - low) / top * (len(SPARK_CHARS) - 1) + half))]
                   for v in values)


def epoch(value: Any) -> float | None:
    """An ISO 8601 time (``…Z``) → epoch seconds; None when absent or unreadable."""
    from datetime import datetime

    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
