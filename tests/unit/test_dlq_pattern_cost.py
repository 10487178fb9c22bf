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
        compile_pattern(f"j{i}" + r"\pL{8}").search("résumé ünïcödé " * 200)
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
                          (r"^\w+Error: [^:]{1,200}$", "ValueError: bad ad"), (r"\pL{3,8} failed", "Ünïcode failed")]:
        assert compile_pattern(pattern).search(text), pattern
