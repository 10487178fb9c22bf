"""The Kubernetes backend's calls: one at a time in a thread, each awaited at most its bound (attack30b F5)."""

from __future__ import annotations

import asyncio
import threading

import pytest

from gamead_core.errors import ScalerUnavailable
from gamead_core.scaling.call_thread import CallThread
from tests.support import wait_for


def test_a_call_past_its_bound_is_given_up_and_no_other_starts_before_it_returns() -> None:
    """A call that does not return (one the scaler cannot cut: a credential plugin that never ends) is given up on
    after its bound, its ``on_give_up`` told which thread; until it returns every other call fails at once saying
    which call is still running (none queues behind it, to land minutes later); after, calls run again."""
    release, given_up = threading.Event(), []
    calls = CallThread(on_give_up=given_up.append)

    async def run(fn: object, total: float = 0.2) -> object:
        try:
            return await calls.run("patch deployments/scale of ns/w", fn, total, sent=True)  # type: ignore[arg-type]
        except ScalerUnavailable as exc:
            return exc

    first = asyncio.run(run(lambda: release.wait(30) and "late"))
    assert isinstance(first, ScalerUnavailable) and first.sent
    assert "patch deployments/scale of ns/w did not end within 0.2s" in first.message
    assert len(given_up) == 1 and isinstance(given_up[0], int)
    second = asyncio.run(run(lambda: "never run"))
    assert isinstance(second, ScalerUnavailable) and not second.sent
    assert "has not returned" in second.message and "no other call is made until it does" in second.message
    release.set()  # the first call returns: calls run again
    wait_for(lambda: asyncio.run(run(lambda: 7, total=5)) == 7, timeout=10, what="a call to run again")


def test_what_a_call_raises_is_raised_to_its_caller() -> None:
    def fails() -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        asyncio.run(CallThread().run("get", fails, 5, sent=False))
