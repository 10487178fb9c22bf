"""pwatch review item 2: a PartitionsChanged raised without its change (the repartition's own refusals, the
pre-flight's) made the API's topology watch forget the mismatch it had found and log "fit again" while the work
streams still did not fit: ``/readyz`` turned ready and submits were taken by the wrong modulus. The check is
replaced by one that raises, as the watch's input; what is asserted is what an operator sees."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from gamead_core.config import GameadSettings
from gamead_core.errors import PartitionsChanged
from gamead_core.queue import watch as watch_module
from gamead_core.queue.partitions import PartitionChange

CHANGE = PartitionChange(setting=3, found=(0, 1, 2, 3, 4), made_with=(5, 5, 5, 5, 5), held=0)
LINE = "the queue has 5 partitions, this node is configured for 3 — restart it with queue.partitions=5"


def test_a_refusal_without_its_change_keeps_the_mismatch(monkeypatch: pytest.MonkeyPatch, caplog: Any) -> None:
    raised: list[PartitionsChanged] = [PartitionsChanged(CHANGE.stale_node(), change=CHANGE),
                                       PartitionsChanged("refused (the change not attached)")]

    async def check_topology(*args: Any, **kwargs: Any) -> None:
        raise raised.pop(0)

    monkeypatch.setattr(watch_module, "check_topology", check_topology)
    watch = watch_module.TopologyWatch(None, GameadSettings.model_validate({"queue": {"partitions": 3}}),  # type: ignore[arg-type]
                                       interval=5)

    async def two_checks() -> None:
        for _ in range(2):
            with pytest.raises(PartitionsChanged):
                await watch.check_once()

    with caplog.at_level(logging.INFO, logger="gamead_core.queue.watch"):
        asyncio.run(two_checks())
    assert watch.readiness() == f"failing: {LINE}"
    assert watch.status()["partitions"] == LINE
    assert "fit queue.partitions" not in caplog.text, caplog.text  # no false "fit again"
