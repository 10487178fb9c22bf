"""Review stats2 #2: ``late`` false alarms. A node's heartbeat age was measured when ``/v1/workers`` answered,
against a registry read up to one sample interval (1 s) old, and compared with 2.5 beats of the *API's*
``registry.heartbeat_interval``: at 0.5 s a healthy node reached ~1.5 s > 1.25 s and flapped to ``late``, and
a worker configured with a longer interval than the API's always showed ``late``. Nodes now publish their own
interval (``heartbeatInterval``), and the threshold allows for the read's age."""

from __future__ import annotations

from datetime import datetime, timezone
from types import SimpleNamespace

from gamead_core.config import GameadSettings
from gamead_core.registry.nodes import WorkerSelf, api_node_info, worker_node_info
from gamead_core.stats.sampler import QueueSampler

T0 = 1_800_000_000.0


def worker_beat(worker_id: str, beat_at: float, interval: float | None) -> object:
    me = WorkerSelf(id=worker_id, concurrency=4, started=T0 - 3600, in_flight=1, processed=10, failed=0,
                    last_error=None, last_progress=beat_at, recent=[], holding=[], task_timeout=60.0, ack_wait=30.0,
                    heartbeat_interval=interval)
    return worker_node_info(me, now=beat_at)


def states(beats: list, read_at: float, now: float) -> dict[str, str]:
    """What ``gamead workers`` shows (``/v1/workers``) at ``now`` of the registry read at ``read_at``, from an API
    node beating every 0.5 s (registry.ttl 60 s)."""
    settings = GameadSettings(registry={"heartbeat_interval": 0.5, "ttl": 60})
    sampler = QueueSampler(SimpleNamespace(nc=None, js=None), settings, node_id="api-1", clock=lambda: now,
                           sections=False)
    sampler.registry_nodes, sampler.registry_read_at, sampler.nodes_ok = tuple(beats), read_at, True
    return {n["id"]: n["state"] for n in sampler.workers_payload()["items"]}


def test_a_healthy_node_read_a_second_ago_is_not_late() -> None:
    read_at = T0
    beats = [worker_beat("w-1", read_at - 0.5, 0.5), worker_beat("w-2", read_at - 0.55, 0.5),
             api_node_info("api-1", started=T0 - 3600, heartbeat_interval=0.5).model_copy(
                 update={"heartbeat_at": datetime.fromtimestamp(read_at - 0.5, timezone.utc)})]
    assert states(beats, read_at, now=read_at + 1.0) == {"w-1": "ok", "w-2": "ok", "api-1": "ok"}


def test_a_node_is_late_by_its_own_interval_not_the_apis() -> None:
    now = T0
    beats = [worker_beat("slow-beats", now - 6.0, 5.0), worker_beat("missed-3", now - 20.0, 5.0)]
    assert states(beats, read_at=now, now=now) == {"slow-beats": "ok", "missed-3": "late"}


def test_an_older_node_without_its_interval_is_judged_by_the_apis() -> None:
    now = T0
    beats = [worker_beat("old-ok", now - 1.0, None), worker_beat("old-late", now - 5.0, None)]
    assert states(beats, read_at=now - 0.5, now=now) == {"old-ok": "ok", "old-late": "late"}
    assert "heartbeatInterval" in worker_beat("w", now, 2.0).model_dump(mode="json", by_alias=True)
