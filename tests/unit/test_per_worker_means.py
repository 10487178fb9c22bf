"""attack44c F6: ``gamead scale status`` said ``per worker  13,118 ads/s (latency-bound: concurrency 4 / p50 2,667
ms)``: 4 / 2.667 s is 1.5 ads/s. The rate was the mean of each worker's own concurrency / p50 (one fast worker,
26,235/s, one slow, 1.5/s), the concurrency and p50 printed beside it means of their own (a mean of ratios is no
ratio of means). Now every figure printed beside a rate gives that rate, or the line says it is a mean and of
which workers' own rates; ``perWorkerBasis`` carries the slowest and the fastest worker with their own figures.
Pure: no servers."""

from __future__ import annotations

import math
import re

from hypothesis import given
from hypothesis import strategies as st

from gamead_cli.per_worker import per_worker_text
from gamead_core.stats.rates import WorkerLoad, per_worker_capacity

# the finding's two workers: concurrency 4 each, p50 0.15247 ms (26,235/s) and 2,666.7 ms (1.5/s)
FAST = WorkerLoad(4, 4 * 1000 / 26235, 0.0, samples=50)
SLOW = WorkerLoad(4, 4 * 1000 / 1.5, 0.0, samples=50)


def _said(workers: list[WorkerLoad]) -> tuple[str, dict]:
    found = per_worker_capacity(workers, completion_rate=1.0, saturated=False, since=1.0)
    assert found is not None
    return per_worker_text(found.rate, found.wire()), found.wire()


def test_the_findings_mean_of_a_fast_and_a_slow_worker_says_each_ones_own_rate() -> None:
    text, basis = _said([FAST, SLOW])
    assert text == ("13,118.2 ads/s (mean of 2 workers' own rates: 1.5 ads/s (latency-bound: concurrency 4 / p50 "
                    "2,667 ms) and 26,235 ads/s (latency-bound: concurrency 4 / p50 0.152 ms))"), text
    assert "p50 1,333 ms" not in text  # the mean p50, which gave 3.0/s, is no longer printed as the cause
    assert basis["workers"] == 2 and basis["perWorkerPerSec"] == 13118.25
    assert basis["slowest"] == {"perSec": 1.5, "bound": "latency", "concurrency": 4, "p50Ms": 2666.6667,
                                "cpuPerAdMs": None, "latencyBoundPerSec": 1.5}
    assert basis["fastest"]["perSec"] == 26235.0 and basis["fastest"]["p50Ms"] == 0.1525


def test_cpu_and_mixed_means_say_what_they_are() -> None:
    cpu, _ = _said([WorkerLoad(4, 0.1, 0.0, samples=50, cpu_per_ad_ms=0.5),
                    WorkerLoad(4, 0.1, 0.0, samples=50, cpu_per_ad_ms=2.0)])
    # was "1,250.0 ads/s (CPU-bound: 1.25 ms CPU per ad; …)": 1 / 1.25 ms is 800/s
    assert cpu == ("1,250.0 ads/s (mean of 2 workers' own rates: 500 ads/s (CPU-bound: 2.00 ms CPU per ad; "
                   "concurrency / p50 alone: 40,000 ads/s) and 2,000 ads/s (CPU-bound: 0.500 ms CPU per ad; "
                   "concurrency / p50 alone: 40,000 ads/s))"), cpu
    mixed, basis = _said([WorkerLoad(4, 0.5, 0.0, samples=50, cpu_per_ad_ms=2.0),
                          WorkerLoad(4, 100.0, 0.0, samples=50, cpu_per_ad_ms=2.0),
                          WorkerLoad(4, 50.0, 0.0, samples=50)])
    assert mixed.startswith("206.7 ads/s (mean of 3 workers' own rates, 1 of them CPU-bound, the rest latency-bound: "
                            "from 40.0 ads/s (latency-bound: concurrency 4 / p50 100 ms; 2.00 ms CPU per ad) to "
                            "500 ads/s (CPU-bound: 2.00 ms CPU per ad"), mixed
    assert "means of all" not in mixed and basis["bound"] == "mixed"
    alike, _ = _said([WorkerLoad(4, 0.1, 0.0, samples=50, cpu_per_ad_ms=0.5)] * 3)
    assert alike == ("2,000.0 ads/s (each of 3 workers, e.g. CPU-bound: 0.500 ms CPU per ad; concurrency / p50 "
                     "alone: 40,000 ads/s)"), alike


def test_an_older_leaders_means_are_said_to_be_means() -> None:
    """A basis without ``slowest``/``fastest`` (a leader from before them): its means are named as such."""
    basis = {"bound": "latency", "workers": 2, "concurrency": 4.0, "p50Ms": 1333.4, "cpuPerAdMs": None}
    assert per_worker_text(13118.2, basis) == ("13,118.2 ads/s (mean of 2 workers' own rates; means: CPU per ad, "
                                               "concurrency 4 / p50 1,333 ms, which need not give it)")


_RATE = r"([\d,]+(?:\.\d+)?)(?: ads)?/s"


def _figures_give_their_rates(text: str) -> None:
    """Each ``concurrency C / p50 P ms`` and ``CPU-bound: X ms CPU per ad`` printed gives the rate printed last
    before it (to the printed digits)."""
    for m in re.finditer(r"latency-bound: concurrency (\d+) / p50 ([\d,.]+) ms|CPU-bound: ([\d,.]+) ms CPU", text):
        before = re.findall(_RATE, text[:m.start()])
        assert before, text
        shown = float(before[-1].replace(",", ""))
        gives = (int(m[1]) * 1000 / float(m[2].replace(",", "")) if m[1] else 1000 / float(m[3].replace(",", "")))
        assert math.isclose(gives, shown, rel_tol=0.06, abs_tol=0.06), (m[0], shown, text)


workers = st.builds(WorkerLoad, concurrency=st.integers(1, 64), p50_ms=st.floats(0.05, 1e5), started_at=st.just(0.0),
                    cpu_per_ad_ms=st.one_of(st.none(), st.floats(0.01, 100.0)), samples=st.just(50))


@given(pool=st.lists(workers, min_size=1, max_size=5))
def test_every_figure_beside_a_rate_gives_it(pool: list[WorkerLoad]) -> None:
    text, basis = _said(pool)
    _figures_give_their_rates(text)
    if len(pool) > 1 and not math.isclose(basis["slowest"]["perSec"], basis["fastest"]["perSec"], rel_tol=5e-3):
        assert f"mean of {len(pool)} workers' own rates" in text, text
    for end in (basis["slowest"], basis["fastest"]):  # the API's figures: each worker's own give its own rate
        gives = (end["concurrency"] * 1000 / end["p50Ms"] if end["bound"] == "latency" else 1000 / end["cpuPerAdMs"])
        assert math.isclose(gives, end["perSec"], rel_tol=1e-3, abs_tol=1e-3), end  # perSec: 3 decimals
