"""What a gap between two ads costs gamead's own per-ad work on this machine (issue 14: steady ads vs drained ones).

Run from the repository root::

    .venv/bin/python benchmarks/bench_cold_work.py                 # 3 rounds of 300 ads per contender (~1 min)
    .venv/bin/python benchmarks/bench_cold_work.py --gaps 1,10 --ads 200
    .venv/bin/python benchmarks/bench_cold_work.py --output json   # for scripts

No NATS, no I/O, one process and one thread. The work is what a worker's CPU does per ad besides talking to
NATS, with ``bench_worker_drain.py``'s protocol floor's own function (``outcome``): decode the work message's
record, ``analyze()`` its ad, build the ``processing`` record (``started_record``) and the completed record's
bytes (``completed_bytes``). Each ad is timed alone (``time.thread_time_ns``: this thread's
CPU, not the gap). Between two ads, one of:

* **back to back**: no gap, as in a burn-down;
* **busy gap, G ms**: this thread spins on the clock for G ms, so it should keep its core, and it touches almost
  no memory;
* **asleep gap, G ms**: this thread sleeps G ms, so its core may run something else or go idle, as a gamead
  role's does between two ads at a steady rate.

The **control** does the same with a loop over a few integers (a tiny working set) sized to take about as much
CPU back to back as the ad does. Printed per work and contender: CPU µs per ad (median over rounds) and × its back
to back figure (median of the rounds' own ratios). If the ad's work costs more after a *busy* gap while the
control's does not, the extra is neither a wake-up (there is none) nor a slower core; it fits the ad's code and
data having been evicted from the caches while it waited, by whatever else the machine (a shared host) runs. At
a steady rate a worker meets such gaps after most ads; in a burn-down it does not (``bench_worker_drain.py``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_common import comma_floats, finish_main, rounds_and_output  # noqa: E402
from bench_worker_drain import make_records, outcome  # noqa: E402
from gamead_core.store.ads import encode  # noqa: E402
from gamead_core.worker.budget import delivery_id  # noqa: E402

BACK_TO_BACK = "back to back"
AD_WORK = "an ad's work"


def ad_work(payload: bytes) -> None:
    """A worker's CPU work for one ad beyond NATS (``bench_worker_drain.outcome``, as its protocol floor does it)."""
    outcome(payload, delivery_id(1, 1))


def small_loop(n: int) -> Callable[[bytes], None]:
    """The control: ``n`` additions over a few integers, whatever the payload (a working set of a few objects)."""

    def work(_: bytes) -> None:
        total = 0
        for i in range(n):
            total += i

    return work


def busy(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def timed(work: Callable[[bytes], None], payloads: list[bytes], gap: Callable[[float], None] | None,
          gap_s: float) -> float:
    """CPU µs of this thread per payload for ``work``, with ``gap`` (``gap_s`` seconds) after each; the gaps are
    not timed."""
    spent = 0
    for p in payloads:
        t0 = time.thread_time_ns()
        work(p)
        spent += time.thread_time_ns() - t0
        if gap is not None:
            gap(gap_s)
    return spent / len(payloads) / 1000.0


def contenders(gaps: list[float]) -> list[tuple[str, Callable[[float], None] | None, float]]:
    out: list[tuple[str, Callable[[float], None] | None, float]] = [(BACK_TO_BACK, None, 0.0)]
    for g in gaps:
        out += [(f"busy gap, {g:g} ms", busy, g / 1000.0), (f"asleep gap, {g:g} ms", time.sleep, g / 1000.0)]
    return out


def calibrated_loop(payloads: list[bytes], target_us: float) -> tuple[int, Callable[[bytes], None]]:
    """A :func:`small_loop` taking about ``target_us`` of CPU back to back, and its size."""
    n = 1000
    per = timed(small_loop(n), payloads[:50], None, 0.0)
    n = max(100, int(n * target_us / max(per, 0.01)))
    return n, small_loop(n)


def run(args: argparse.Namespace) -> dict[str, object]:
    payloads = [encode(r) for r in make_records(args.ads, seed=7)]
    for p in payloads:  # warm: imports, regex compilation, the analyser's caches
        ad_work(p)
    loop_n, control = calibrated_loop(payloads, timed(ad_work, payloads, None, 0.0))
    works = {AD_WORK: ad_work, f"control: a loop of {loop_n:,} additions": control}
    cs = contenders(args.gaps)
    rounds: list[dict[tuple[str, str], float]] = []
    for r in range(args.rounds):
        this: dict[tuple[str, str], float] = {}
        order = cs[r % len(cs):] + cs[:r % len(cs)]
        for name, gap, gap_s in order:
            for wname, work in works.items():
                this[(wname, name)] = timed(work, payloads, gap, gap_s)
        print(f"[bench] round {r + 1}: " + ", ".join(f"{n} {this[(AD_WORK, n)]:.0f} µs"
                                                    for n, _, _ in cs), file=sys.stderr)
        rounds.append(this)
    table = []
    for wname in works:
        for name, _, _ in cs:
            table.append({
                "work": wname,
                "contender": name,
                "cpu_us_per_ad": round(statistics.median(r[(wname, name)] for r in rounds), 1),
                "x_back_to_back": round(statistics.median(r[(wname, name)] / r[(wname, BACK_TO_BACK)]
                                                          for r in rounds), 2),
            })
    return {"ads": args.ads, "rounds": args.rounds, "cores": os.cpu_count(), "rows": table}


def print_table(res: dict[str, object]) -> None:
    print(f"CPU per ad of this thread, gaps not counted ({res['ads']} ads per contender, median of {res['rounds']} "
          f"rounds, {res['cores']} cores)")
    print(f"{'work':<36} {'between two ads':<22} {'CPU µs per ad':>14} {'× back to back':>15}")
    rows: list[dict[str, object]] = res["rows"]  # type: ignore[assignment]
    for row in rows:
        print(f"{row['work']:<36} {row['contender']:<22} {row['cpu_us_per_ad']:>14.0f} {row['x_back_to_back']:>15.2f}")
    print("busy gap: this thread spins on the clock (it should keep its core; it touches almost no memory); asleep "
          "gap: it sleeps. "
          "× back to back: the median of each round's ratio")


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--ads", type=int, default=300, help="ads per contender per round (300)")
    p.add_argument("--gaps", type=comma_floats, default=[0.3, 1.0, 3.0, 10.0],
                   help="gaps between two ads, ms, comma-separated (0.3,1,3,10)")
    rounds_and_output(p)
    return finish_main(p, argv, lambda a: None if a.ads >= 50 and a.rounds >= 1 and all(g > 0 for g in a.gaps)
                       else "--ads must be ≥ 50, --rounds ≥ 1 and every gap > 0", run, print_table)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
