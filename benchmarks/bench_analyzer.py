"""Microbenchmark of the rule-based analyser: CPU µs per ad over a fixed corpus, this tree's analyser against
the one it replaced, in the same process and the same run.

Run from the repository root::

    .venv/bin/python benchmarks/bench_analyzer.py                 # 15 rounds, ~15 s
    .venv/bin/python benchmarks/bench_analyzer.py --quick         # 3 rounds, smoke run
    .venv/bin/python benchmarks/bench_analyzer.py --baseline-ref main --output json

The corpus is ``tests/unit/analyzer_corpus.py`` (528 ads: 400 from ``gamead submit --count``'s generator, the
spec's sample and hand-written edge cases, some at the models' maximum sizes). The baseline is the ``rules-1``
analyser as it was before it was made cheaper (read from git at the commit ``tests/unit/test_analyzer_equivalence.py``
names), or the analyser at a git revision with ``--baseline-ref``. Each round times every corpus ad once with each
analyser (the order alternates between rounds so a burst of load elsewhere hits both alike), with
``time.process_time`` (CPU of this process, so waiting for a core on a busy machine does not count), three ways:
``warm`` (the analysers' caches as the earlier rounds left them: a call to action, genre or tag seen before is
not judged again), ``cold pass`` (each analyser's caches emptied at the start of each pass: each of the corpus'
22 calls to action, its genres and tags judged once per pass, as a fresh worker would) and ``uncached`` (emptied
before every ad, untimed: every rule runs for every ad). The warm figure alone hid most of a change to a cached
rule (review30 F16: ``rules-2``'s incentive reading ran for 22 of 528 ads, once). Printed: the median over rounds
of µs per ad for each, the ratios, the worst single ad (max over ads of its warm median), and whether both gave
equal outputs for every ad (against a ``rules-1`` analyser few do since ``rules-2`` named the call to action's
length in its reason: ``tests/unit/test_analyzer_equivalence.py`` says what differs). Pure CPU, one process, no
I/O: not a throughput figure of the worker.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gamead_core.worker.analyzer import analyze  # noqa: E402
from benchmarks.needs_test_install import require  # noqa: E402

require(__file__)

from tests.unit.analyzer_corpus import corpus  # noqa: E402

Analyse = Callable[[Any], Any]


def load_baseline(ref: str | None) -> tuple[str, Analyse]:
    """The analyser to compare with: ``gamead_core/worker/analyzer.py`` at git revision ``ref``, with its
    ``analyzer_*.py`` parts there (loaded as modules of their own from ``git show``); by default the ``rules-1``
    analyser as first written, at the commit the equivalence test reads it from (``REFERENCE_COMMIT``). Raises
    ``CalledProcessError`` without that history."""
    if ref is None:
        from tests.unit.test_analyzer_equivalence import REFERENCE_COMMIT  # noqa: PLC0415

        return f"rules-1 before the change (at {REFERENCE_COMMIT[:7]})", load_baseline(REFERENCE_COMMIT)[1]
    git = ["git", "-C", str(ROOT)]
    names = subprocess.run([*git, "ls-tree", "--name-only", ref, "gamead_core/worker/"], check=True,
                           capture_output=True, text=True).stdout.split()
    # analyzer.py and, from the split on, its analyzer_*.py parts, each loaded as baseline_<name> (their imports
    # of one another rewritten to match), so no part of the baseline comes from this tree
    parts = [Path(n).stem for n in names if Path(n).name.startswith("analyzer") and n.endswith(".py")]
    tmp = Path(tempfile.mkdtemp(prefix="gamead-bench-analyzer-"))
    for stem in parts:
        source = subprocess.run([*git, "show", f"{ref}:gamead_core/worker/{stem}.py"],
                                check=True, capture_output=True, text=True).stdout
        for other in parts:
            source = source.replace(f"gamead_core.worker.{other} ", f"baseline_{other} ")
        (tmp / f"baseline_{stem}.py").write_text(source)
    sys.path.insert(0, str(tmp))
    try:
        module = importlib.import_module("baseline_analyzer")
    finally:
        sys.path.remove(str(tmp))
        shutil.rmtree(tmp, ignore_errors=True)
    return f"gamead_core/worker/analyzer.py at {ref}", module.analyze


def analyser_modules(prefix: str) -> list[ModuleType]:
    """The loaded modules of one analyser: ``gamead_core.worker.analyzer`` and its ``analyzer_*`` parts, or
    ``baseline_analyzer`` and its parts (``load_baseline``)."""
    return [module for name, module in sorted(sys.modules.items()) if name.startswith(prefix)]


def clear_caches(modules: Iterable[ModuleType]) -> int:
    """Empty every cache the analyser's modules keep across ads: each ``functools`` cache (``cache_clear``) and
    each memo dict (a dict subclass with ``__missing__``, e.g. the stem cache). Returns how many were emptied."""
    emptied = 0
    for module in modules:
        for value in list(vars(module).values()):
            if callable(getattr(value, "cache_clear", None)):
                value.cache_clear()
            elif isinstance(value, dict) and hasattr(type(value), "__missing__"):
                value.clear()
            else:
                continue
            emptied += 1
    return emptied


def time_round(fn: Analyse, ads: list[Any], per_ad: list[list[float]],
               clear: Callable[[], object] | None = None, each_ad: bool = False) -> float:
    """CPU seconds for one pass over ``ads``; each ad's own time appended to ``per_ad[i]``. ``clear`` (untimed)
    empties the analyser's caches at the start of the pass, or before every ad with ``each_ad``."""
    clock = time.process_time_ns
    total = 0
    if clear is not None:
        clear()
    for i, ad in enumerate(ads):
        if clear is not None and each_ad:
            clear()
        t0 = clock()
        fn(ad)
        dt = clock() - t0
        total += dt
        per_ad[i].append(dt / 1e3)
    return total / 1e9


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, help="timed rounds per analyser (default 15, --quick 3)")
    p.add_argument("--quick", action="store_true", help="smoke run: 3 rounds")
    p.add_argument("--baseline-ref", help="compare with the analyser at this git revision instead of rules-1")
    p.add_argument("--output", choices=("text", "json"), default="text")
    a = p.parse_args(argv)
    rounds = a.rounds or (3 if a.quick else 15)
    ads = corpus()
    label, old = load_baseline(a.baseline_ref)
    same = [old(ad).model_dump() == analyze(ad).model_dump() for ad in ads]  # also warms caches and patterns
    contenders: list[tuple[str, Analyse, Callable[[], object]]] = [
        ("baseline", old, lambda: clear_caches(analyser_modules("baseline_analyzer"))),
        ("current", analyze, lambda: clear_caches(analyser_modules("gamead_core.worker.analyzer"))),
    ]
    modes = {"warm": (False, False), "cold_pass": (True, False), "uncached": (True, True)}  # clear, before each ad
    totals = {(name, mode): [] for name, _, _ in contenders for mode in modes}
    per_ad: dict[str, list[list[float]]] = {name: [[] for _ in ads] for name, _, _ in contenders}
    for r in range(rounds):
        for mode, (clearing, each_ad) in modes.items():
            for name, fn, clear in contenders if r % 2 == 0 else contenders[::-1]:
                seconds = time_round(fn, ads, per_ad[name] if mode == "warm" else [[] for _ in ads],
                                     clear if clearing else None, each_ad)
                totals[name, mode].append(seconds / len(ads) * 1e6)
        for name, fn, _ in contenders:  # untimed: refill what the cold passes emptied, so the next warm pass is warm
            for ad in ads:
                fn(ad)
    result: dict[str, Any] = {
        "what": "analyser CPU µs per ad (process_time), median over rounds, one process, no I/O; warm: caches as "
                "the earlier rounds left them; cold_pass: emptied at each pass's start; uncached: before every ad",
        "corpus_ads": len(ads), "rounds": rounds, "baseline": label,
        "load_average_1m": round(os.getloadavg()[0], 2), "cpus": os.cpu_count(),
        "equal_outputs": sum(same),
    }
    for name, _, _ in contenders:
        worst = max(range(len(ads)), key=lambda i: statistics.median(per_ad[name][i]))
        warm = totals[name, "warm"]
        result[name] = {
            "us_per_ad_median": round(statistics.median(warm), 1),
            "us_per_ad_min": round(min(warm), 1),
            "us_per_ad_max": round(max(warm), 1),
            "cold_pass_us_per_ad_median": round(statistics.median(totals[name, "cold_pass"]), 1),
            "uncached_us_per_ad_median": round(statistics.median(totals[name, "uncached"]), 1),
            "worst_ad_us": round(statistics.median(per_ad[name][worst]), 1),
            "worst_ad_title": ads[worst].title[:60],
        }
    for mode, key in [("", "us_per_ad_median"), ("_cold_pass", "cold_pass_us_per_ad_median"),
                      ("_uncached", "uncached_us_per_ad_median")]:
        result[f"ratio{mode}_current_over_baseline"] = round(result["current"][key] / result["baseline"][key], 3)
    if a.output == "json":
        print(json.dumps(result, indent=2))
    else:
        print(f"analyser microbenchmark: {len(ads)} corpus ads x {rounds} rounds, CPU µs per ad (process_time), "
              f"median of rounds [min-max]; load average {result['load_average_1m']} on {os.cpu_count()} cores")
        for name, _, _ in contenders:
            r = result[name]
            print(f"  {name:8} {r['us_per_ad_median']:8.1f} µs/ad warm "
                  f"[{r['us_per_ad_min']:.1f}-{r['us_per_ad_max']:.1f}]"
                  f", {r['cold_pass_us_per_ad_median']:.1f} cold pass, {r['uncached_us_per_ad_median']:.1f} uncached"
                  f"   slowest ad {r['worst_ad_us']:.1f} µs ({r['worst_ad_title']!r})")
        print(f"  baseline = {label}")
        print(f"  current / baseline = {result['ratio_current_over_baseline']:.3f} warm, "
              f"{result['ratio_cold_pass_current_over_baseline']:.3f} cold pass, "
              f"{result['ratio_uncached_current_over_baseline']:.3f} uncached; "
              f"equal outputs on {sum(same)}/{len(ads)} ads")
    return 0 if all(same) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
