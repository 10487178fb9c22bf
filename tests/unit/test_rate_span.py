"""attack29a F3/F4: the rates of ``/v1/stats`` and ``/v1/scale`` say what they are.

F3: ``rates`` were divided by the span of the samples each had while ``windowSeconds`` said another (60 while the
samples spanned 59 s; ``completedPerSec`` a second shorter than ``submittedPerSec`` when the registry was read a
sample later), so ``submittedPerSec × windowSeconds`` read 508 when 500 ads were sent. Now every rate is over
the same two samples, nearest a minute apart, and ``windowSeconds`` is the seconds between them.

F4: ``gamead scale status`` said ``rates over last 55 s (under a minute of samples: the leader restarted)`` for
ever under ``gamead up`` (its sampler, sampled once per 5 s tick, never spanned the minute), though the leader had
not restarted. Now the span is the minute whatever the sampling interval, and the note names the real cause.
"""

from __future__ import annotations

import io
from types import SimpleNamespace
from typing import Any

import pytest
from rich.console import Console

from gamead_cli.commands.scale import status_view
from gamead_core.config import GameadSettings
from gamead_core.models import utc_iso
from gamead_core.scaling.status import observed_document
from gamead_core.stats.reading import QueueReading
from gamead_core.stats.sampler import QueueSampler, Sample

T0 = 1_800_000_000.0
SENT = 500


def burst_sampler(interval: float, ticks: int, *, jitter: bool,
                  declared: float | None = None) -> tuple[QueueSampler, list[dict[str, Any]]]:
    """A sampler fed one sample every ``interval`` s (late by 0-50 ms with ``jitter``; ``declared``: the interval it
    was made with, when another, as ``gamead up``'s 1 s sampler sampled once per 5 s tick): 500 ads submitted over the
    first 10 s after 6 s, each completed one sample later; the registry unread at the first sample (no
    completed total yet), as right after an API starts. Returns the sampler and its ``rates`` after each sample,
    with the ads submitted/completed by then."""
    sampler = QueueSampler(SimpleNamespace(nc=None, js=None), GameadSettings(), node_id="api-1",
                           interval=declared or interval, sections=False)
    seen, completed = [], 0
    for i in range(ticks):
        t = T0 + i * interval + (0.005 * (i * 37 % 11) if jitter else 0.0)
        submitted = min(SENT, max(0, round((i * interval - 6) * SENT / 10)))
        sampler._append(Sample(QueueReading(t=t, connected=True), submitted=submitted,
                               completed=None if i == 0 else completed, retried=None if i == 0 else 0,
                               dead=None if i == 0 else 0))
        completed = submitted
        seen.append({**sampler.stats()["rates"], "t": t - T0})
    return sampler, seen


@pytest.mark.parametrize(("interval", "jitter", "declared"), [(1.0, True, None), (5.0, False, None), (5.02, True, 1.0)],
                         ids=["1s-jittered", "5s", "5s-ticks-of-a-1s-sampler"])
def test_a_rate_times_its_window_is_what_happened_in_it(interval: float, jitter: bool, declared: float | None) -> None:
    _, seen = burst_sampler(interval, int(200 / interval), jitter=jitter, declared=declared)
    for r in seen[2:]:  # two samples with every total: rates
        w = r["windowSeconds"]
        # never more than was sent: the rates are divided by the seconds their samples really span
        assert r["submittedPerSec"] * w <= SENT + 0.1, r
        assert r["completedPerSec"] * w <= SENT + 0.1, r
        if 25 <= r["t"] <= 60:  # the whole burst, submitted and completed, lies inside the span: all of it
            assert abs(r["submittedPerSec"] * w - SENT) < 0.1, r
            assert abs(r["completedPerSec"] * w - SENT) < 0.1, r
        if r["t"] >= 60 + interval:  # a minute of samples: the minute, to within half a sample interval
            assert abs(w - 60) <= interval / 2 + 0.06, r


def scale_status_text(doc: dict[str, Any]) -> str:
    out = io.StringIO()
    Console(file=out, width=200, no_color=True).print(status_view(doc))
    return out.getvalue()


def scale_doc(sampler: QueueSampler, leader_since: float) -> dict[str, Any]:
    last = sampler.latest
    assert last is not None
    return {"backend": "local", "leader": {"id": "up-vm-1", "since": utc_iso(leader_since)},
            "observed": observed_document(last, dict(sampler.rates), None, sampler.rate_window), "decisions": []}


def test_scale_status_says_under_a_minute_only_when_it_is_and_why() -> None:
    # a leader of 10 minutes whose 1 s sampler was sampled once per tick (as `gamead up`'s was: 5 s and the tick's
    # own 20 ms, so the sample a minute back was 60.24 s back, always out: "last 55 s"): the minute, no note
    sampler, _ = burst_sampler(5.02, 120, jitter=True, declared=1.0)
    text = scale_status_text(scale_doc(sampler, T0))
    assert "rates over" not in text and "restarted" not in text, text

    # its sampler missed the queue for 40 s (NATS unreachable) 20 s into the minute: under a minute, not a restart
    sampler, _ = burst_sampler(1.0, 600, jitter=False)
    last = sampler.latest
    assert last is not None
    for i in range(1, 41):
        sampler._append(Sample(QueueReading(t=last.t + i, connected=False)))
    for i in range(41, 76):
        sampler._append(Sample(QueueReading(t=last.t + i, connected=True), submitted=SENT, completed=SENT,
                               retried=0, dead=0))
    text = scale_status_text(scale_doc(sampler, T0))
    assert "rates over  last 34 s (under a minute of samples: samples missing" in text, text
    assert "restarted" not in text, text

    # a leader that started 11 s ago: its sampler has 11 s
    sampler, _ = burst_sampler(1.0, 13, jitter=False)  # the first sample has no completed total: 11 s
    text = scale_status_text(scale_doc(sampler, T0))
    assert "rates over  last 11 s (under a minute of samples: the leader restarted)" in text, text
