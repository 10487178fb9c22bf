"""What one DLQ ``message`` filter may cost the API (attack14a): ``GET /v1/dlq?message=k1(.*){1,1000}(.*){1,1000}…``
(~510 characters, a new ``k$i`` each time) compiled for 0.3-3 s on the event loop (30 at once: ``/healthz``
unanswered for 10.75 s) and RE2's module cache kept 128 of them (API RSS 111 → 710 MB). Now a pattern may use 256
KiB (refused in milliseconds past it) and 32 compiled patterns are kept (gamead_core.dlq_pattern)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gamead_core.dlq_pattern import CACHED, PATTERN_MAX_MEM, compile_pattern
from gamead_core.queue.dlq import DlqFilter

_ATTACK = "(.*){1,1000}" * 42


def _rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_the_attackers_pattern_is_refused_saying_how_much_a_pattern_may_use() -> None:
    with pytest.raises(ValueError, match=r"pattern too large.*256 KiB"):
        DlqFilter(message=f"k1{_ATTACK}"[:1000])


def test_a_hundred_distinct_costly_patterns_leave_the_process_memory_bounded() -> None:
    before = _rss_kib()
    refused = 0
    for i in range(100):
        try:
            compile_pattern(f"k{i}{_ATTACK}"[:1000])
        except ValueError:
            refused += 1
    for i in range(CACHED + 8):  # the largest patterns that still fit, searched (matching caches grow too)
        compile_pattern(f"j{i}" + r"\pL{2}").search("résumé ünïcödé " * 200)
    grown_mib = (_rss_kib() - before) / 1024
    assert refused == 100
    assert grown_mib < CACHED * PATTERN_MAX_MEM / (1 << 20) + 16, f"RSS grew {grown_mib:.0f} MiB"


def test_a_repeated_pattern_is_compiled_once_and_its_refusal_repeats_its_reason() -> None:
    assert compile_pattern("timeout|refused") is compile_pattern("timeout|refused")
    for _ in range(2):
        with pytest.raises(ValueError, match="missing \\)"):
            compile_pattern("(")


def test_operators_everyday_patterns_still_compile_and_match() -> None:
    for pattern, text in [("(?i)connection (reset|refused)", "Connection refused by peer"),
                          (r"TaskTimeout: .* after \d+(\.\d+)?s", "TaskTimeout: analysis after 30.5s"),
                          (r"^\w+Error: [^:]{1,200}$", "ValueError: bad ad"), (r"\pL+ failed", "Ünïcode failed"), (r"[^:]{1,200}$", "a: b")]:
        assert compile_pattern(pattern).search(text), pattern


def test_a_pattern_whose_program_would_make_each_search_slow_is_refused() -> None:
    """review14: with 256 KiB, ``.{1,1000}ZZ`` or ``[^#]{1,1000}#`` compiled but searched a 4,000-character message
    in 75-225 ms (RE2's DFA out of memory, its NFA linear in text × program): 200 entries held the API's loop 2.4 s.
    A pattern compiling to more than MAX_PROGRAM instructions is refused; ``.{1,500}`` still fits."""
    for slow in (r".{1,1000}ZZ", r"[^#]{1,1000}#", r".{1,600}ZZ", r"\pL{5}"):
        with pytest.raises(ValueError, match=r"RE2 instructions; the limit is 5,000"):
            compile_pattern(slow)
    assert compile_pattern(r".{1,500}ZZ").search("x" * 3990 + "ZZ")
