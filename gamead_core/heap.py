"""The garbage collector of a long-running role, tuned once its start-up is done (issue 14.4).

CPython's cyclic collector runs a young-generation pass every ``threshold0`` (700) net allocations of tracked
objects, and every 10th / 100th pass a middle / full one. A serving API process holds ~100,000 long-lived
objects after start-up (FastAPI's routes and schemas, pydantic's validators, prometheus metrics, nats-py), and
every full pass walks all of them: measured in-process (``benchmarks/bench_submit_profile.py``, 64 submits in
flight), the collector took **23-42 µs of every ``POST /ads``** (~200 µs), while the requests themselves leave
almost no cycles behind. And with 64 requests in flight, their live objects alone pass 700, so the young pass
ran every few requests to find nothing to free.

:func:`freeze_startup_heap` is the recipe of the CPython documentation for ``gc.freeze`` (objects alive after
start-up move to a permanent generation that no pass walks) plus a young-generation threshold of
:data:`GEN0_THRESHOLD` (CPython 3.13's own default is 2,000): the collector's cost per request fell to 0-7 µs.
Cycles made later are still collected; what start-up left alive and later drops is freed by reference counting
as ever, only a start-up object caught in a cycle that dies later is kept (a one-time, bounded amount).
:func:`thaw_heap` undoes both at shutdown (tests start and stop many apps in one process).
"""

from __future__ import annotations

import gc

__all__ = ["GEN0_THRESHOLD", "freeze_startup_heap", "thaw_heap"]

#: young-generation threshold while serving (net allocations of tracked objects between two young passes)
GEN0_THRESHOLD = 5000

_saved: tuple[int, int, int] | None = None


def freeze_startup_heap() -> None:
    """Collect once, freeze what survives (``gc.freeze``) and raise the young threshold to
    :data:`GEN0_THRESHOLD` if it is lower (never lowers a threshold set by the operator, e.g. through code run
    before). Process-wide; call it once start-up is done."""
    global _saved  # noqa: PLW0603
    gc.collect()
    gc.freeze()
    threshold = gc.get_threshold()
    if _saved is None:
        _saved = threshold  # type: ignore[assignment]
    if threshold[0] < GEN0_THRESHOLD:
        gc.set_threshold(GEN0_THRESHOLD, *threshold[1:])


def thaw_heap() -> None:
    """Undo :func:`freeze_startup_heap`: the frozen objects go back to the oldest generation (collectable
    again) and the thresholds are restored."""
    global _saved  # noqa: PLW0603
    gc.unfreeze()
    if _saved is not None:
        gc.set_threshold(*_saved)
        _saved = None
