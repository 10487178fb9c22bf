"""A running worker's look at ``queue.partitions`` (pwatch review), on a real nats-server.

1. The look is cheap: at most two JetStream API calls (``STREAM.INFO`` of the streams of partitions N and N − 1),
   whatever the topology, instead of a listing of every stream and the consumers of every work stream (~200
   listing calls a second for 200 workers at the old 5 s); the whole topology is read only on a suspicion, and
   still finds 3 → 5 and 5 → 3.
3. A look that fails unexpectedly (a bug, not NATS) no longer ends the watch silently; and the watch's
   PartitionsChanged no longer replaces the exception the worker's main loop ended with.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import nats
import pytest

from gamead_core import names
from gamead_core.config import GameadSettings
from gamead_core.queue.partition_watch import look_at_partitions, suspect_partitions, watch_partitions
from gamead_core.queue.topology import ensure_topology
from gamead_core.worker.runtime import Worker


def _settings(partitions: int, **api: Any) -> GameadSettings:
    return GameadSettings.model_validate({"queue": {"partitions": partitions}, "api": api,
                                          "worker": {"metrics_port": 0}})


def _counted(js: Any, fail_first: int = 0) -> list[str]:
    """The subjects of the JetStream API requests ``js`` makes from now on (each a call to the server); the
    first ``fail_first`` of them raise RuntimeError instead (a bug in a look, not NATS)."""
    subjects: list[str] = []
    request = js._api_request

    async def counted(subject: str, *args: Any, **kwargs: Any) -> Any:
        subjects.append(subject)
        if len(subjects) <= fail_first:
            raise RuntimeError("a look went wrong")
        return await request(subject, *args, **kwargs)

    js._api_request = counted
    return subjects


async def _with_js(url: str, made_with: int, body: Callable[[Any], Any]) -> Any:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream(timeout=5)
        await ensure_topology(js, _settings(made_with))
        return await body(js)
    finally:
        await nc.close()


@pytest.mark.parametrize(("made_with", "setting", "line"), [
    (5, 3, "the queue has 5 partitions, this node is configured for 3 — restart it with queue.partitions=5"),
    (3, 5, "the queue has 3 partitions, this node is configured for 5 — restart it with queue.partitions=3"),
])
def test_a_workers_look_takes_at_most_two_calls_and_still_finds_the_change(
        fresh_nats: Any, made_with: int, setting: int, line: str) -> None:
    url = fresh_nats().url

    async def looks(js: Any) -> tuple[list[str], list[str], Any]:
        calls = _counted(js)
        assert await look_at_partitions(js, made_with) is None  # the streams fit: nothing more read
        fitting = calls[:]
        assert await suspect_partitions(js, setting)
        suspecting = calls[len(fitting):]
        assert len(fitting) <= 2 and len(suspecting) <= 2, (fitting, suspecting)
        return fitting, suspecting, await look_at_partitions(js, setting)

    fitting, suspecting, change = asyncio.run(_with_js(url, made_with, looks))
    assert all(".STREAM.INFO." in s for s in fitting + suspecting), (fitting, suspecting)
    assert change is not None and change.stale_node() == line


def test_the_watch_outlives_a_look_that_fails_unexpectedly(fresh_nats: Any, caplog: Any) -> None:
    url = fresh_nats().url

    async def watch(js: Any) -> Any:
        _counted(js, fail_first=1)
        return await asyncio.wait_for(watch_partitions(js, _settings(3), asyncio.Event(), interval=lambda: 0.05),
                                      30)

    with caplog.at_level(logging.ERROR, logger="gamead_core.queue.partition_watch"):
        change = asyncio.run(_with_js(url, 5, watch))
    assert change is not None and change.live == 5
    assert any("partitions look failed" in r.getMessage() and r.exc_info for r in caplog.records), caplog.text


def test_the_workers_own_error_is_not_replaced_by_the_partitions_change(
        fresh_nats: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The queue is repartitioned while the worker runs (its watch raises PartitionsChanged) and its main loop
    then fails: the loop's error is what ends the run, as the operator must see it."""
    url = fresh_nats().url

    async def broken_loop(self: Worker, puller: Any, stop: asyncio.Event) -> None:
        nc = await nats.connect(url)
        try:
            await nc.jetstream(timeout=5).add_stream(name=names.work_stream(3), subjects=["pwatch.extra"])
        finally:
            await nc.close()
        await asyncio.wait_for(stop.wait(), 30)  # the watch saw it and stops the worker
        raise RuntimeError("the loop broke")

    monkeypatch.setattr(Worker, "_loop", broken_loop)
    worker = Worker(_settings(3, topology_check_interval=0.1), url, worker_id="pwatch-1")
    with pytest.raises(RuntimeError, match="the loop broke"):
        asyncio.run(worker.run(asyncio.Event()))
