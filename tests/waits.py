"""Waiting on state from inside an event loop: :func:`until`, the async twin of :func:`tests.support.wait_for`.

A pause of a fixed length before an assert is a flake on a loaded 2-core machine (the state comes later than the
pause) and a waste on an idle one; a poll of the state with a deadline is neither (house rule 4)."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from tests.support import POLL_CEILING

T = TypeVar("T")


def _said(what: str | Callable[[], str]) -> str:
    """What a wait waited for: ``what``, or what it says when asked (a callable)."""
    return what() if callable(what) else what


async def until(probe: Callable[[], T | Awaitable[T]], *, timeout: float = 10.0, interval: float = 0.01,
                what: str | Callable[[], str] = "condition") -> T:
    """Poll ``probe`` (a plain or an async callable) on the running loop until it gives something truthy, and return
    that; the loop's other tasks run between polls. The pause between polls starts at ``interval`` s and grows by
    half each time up to ``max(interval, POLL_CEILING)`` s, as :func:`tests.support.wait_for`'s (``interval`` 0:
    every turn of the loop). Raises ``AssertionError`` naming ``what`` and the last value after ``timeout`` s (the
    loop's clock); ``what`` may be a callable, asked then, to say the state the wait ended in."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    ceiling = max(interval, POLL_CEILING)
    while True:
        last = probe()
        if inspect.isawaitable(last):  # a probe that never returns ends the wait too, and says so, within a whole
            try:  # timeout past the deadline (session 57's fc5: test_reaper_sweep_failing waited 300 s, unnamed)
                last = await asyncio.wait_for(last, max(deadline - loop.time(), 0.0) + timeout)
            except asyncio.TimeoutError:
                raise AssertionError(f"timed out after {timeout}s waiting for {_said(what)}: a probe never "
                                     "returned") from None
        if last:
            return last  # type: ignore[return-value]
        if loop.time() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {_said(what)} (last: {last!r})")
        await asyncio.sleep(min(interval, max(0.0, deadline - loop.time())))
        interval = min(ceiling, interval * 1.5)


async def registry_older_than_ttl(js: Any) -> None:
    """Wait until the registry bucket is older than its entries' ``max_age`` (``registry.ttl``): only then does the
    doctor take a node missing from it for gone (a younger bucket may have lost a live node's entry: flakes50A)."""
    import time

    from gamead_core import names

    info = await js.stream_info(names.kv_stream(names.REGISTRY_BUCKET))
    assert info.created is not None
    ready = info.created.timestamp() + float(info.config.max_age or 0) + 0.1
    await until(lambda: time.time() > ready, timeout=ready - time.time() + 10, interval=0.05,
                what="the registry bucket older than its ttl")


__all__ = ["registry_older_than_ttl", "until"]
