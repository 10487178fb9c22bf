"""``benchmarks/bench_analyzer.py``'s cold passes: the analyser's caches emptied, so a cached rule is timed too."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from gamead_core.worker import analyzer, analyzer_text
from gamead_core.worker.analyzer import analyze
from tests.unit.analyzer_corpus import corpus

_spec = importlib.util.spec_from_file_location(
    "bench_analyzer", Path(__file__).resolve().parents[2] / "benchmarks" / "bench_analyzer.py")
assert _spec is not None and _spec.loader is not None
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


def test_a_cold_pass_judges_each_call_to_action_again_and_an_uncached_one_every_ad(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """review30 F16: the warm passes ran rules-2's incentive reading (``_cta_verdict`` is cached) for none of the
    528 corpus ads after the first round, so its 1.01x did not measure it. A cold pass runs it once per distinct
    call to action, an uncached pass once per ad; the clearing empties every cache the analyser keeps."""
    ads = corpus()
    judged: list[str] = []
    reading = analyzer._incentive_numbers
    monkeypatch.setattr(analyzer, "_incentive_numbers", lambda cta, folded: judged.append(cta) or reading(cta, folded))
    modules = bench.analyser_modules("gamead_core.worker.analyzer")
    assert {m.__name__ for m in modules} >= {"gamead_core.worker.analyzer", "gamead_core.worker.analyzer_text"}
    bench.clear_caches(modules)  # no verdict made before the wrapper went in survives

    def clear() -> int:
        return bench.clear_caches(modules)

    def one_pass(*how: object) -> list[str]:
        judged.clear()
        bench.time_round(analyze, ads, [[] for _ in ads], *how)
        return list(judged)

    one_pass()
    assert one_pass() == []  # warm: nothing judged again
    assert sorted(one_pass(clear)) == sorted({ad.call_to_action for ad in ads})
    assert len(one_pass(clear, True)) == len(ads) == 528
    assert clear() >= 6
    assert analyzer._cta_verdict.cache_info().currsize == analyzer_text._short_stems.cache_info().currsize == 0
    assert len(analyzer_text._STEMS) == 0
