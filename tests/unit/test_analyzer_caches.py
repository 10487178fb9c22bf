"""The analyser's per-word stem cache stays bounded whatever words arrive (rule 3: no input grows memory without
bound), and a word stemmed after the cache was emptied gets the same stem."""

from __future__ import annotations

from gamead_core.worker import analyzer_text
from gamead_core.worker.analyzer import analyze
from tests.support import submission


def test_a_stream_of_distinct_words_keeps_the_stem_cache_bounded_and_the_analysis_the_same() -> None:
    first = analyze(submission(description="Collect armies of heroes and conquer kingdoms today."))
    for i in range(30):  # 30 descriptions of ~240 distinct words: more than the cache holds
        words = " ".join(f"w{i}x{j}s" for j in range(300))[:1990]
        analyze(submission(description=f"{words}."))
        assert len(analyzer_text._STEMS) <= analyzer_text._STEMS_MAX
    assert analyzer_text._stem_all(["armies", "kingdoms", "the", "glass"]) == {"army", "kingdom", "glass"}
    again = analyze(submission(description="Collect armies of heroes and conquer kingdoms today."))
    assert again == first
