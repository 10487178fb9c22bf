"""The API's collector tuning (gamead_core.heap, issue 14.4): start-up's objects frozen out of every pass, a young
threshold that 64 requests in flight do not trip, and all of it undone at shutdown."""

from __future__ import annotations

import gc

from gamead_core.heap import GEN0_THRESHOLD, freeze_startup_heap, thaw_heap


def test_serving_freezes_the_start_up_heap_and_stopping_gives_the_collector_back() -> None:
    before = gc.get_threshold()
    kept = [[n] for n in range(1000)]  # start-up objects: alive when the API starts serving
    freeze_startup_heap()
    try:
        assert gc.get_freeze_count() >= len(kept)  # no collector pass walks them any more
        assert gc.get_threshold()[0] == max(before[0], GEN0_THRESHOLD)
        assert gc.get_threshold()[1:] == before[1:]
        cycle: list[object] = []
        cycle.append(cycle)  # a cycle made while serving is still collected
        del cycle
        assert gc.collect() >= 1
    finally:
        thaw_heap()
    assert gc.get_freeze_count() == 0 and gc.get_threshold() == before
