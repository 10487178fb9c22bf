"""attack30a F1, the pure parts: what a worker's heartbeat says of the ads it holds unstarted (``unstartedSince``),
how the sampler counts them in a level's oldest age, and the autoscaler's late-level rule reading it. No servers."""

from __future__ import annotations

from datetime import datetime, timezone

from nats.aio.msg import Msg

from gamead_core import names
from gamead_core.config.autoscaler import AutoscalerSettings
from gamead_core.queue.aging import delivery_key
from gamead_core.queue.depth import LevelDepth
from gamead_core.queue.long_poll import Inbox
from gamead_core.registry import NodeInfo
from gamead_core.scaling.policy import Observation, ScalingPolicy
from gamead_core.stats.unstarted import held_since, with_held
from gamead_core.worker.prefetch import PrefetchBuffer
from gamead_core.worker.unstarted import unstarted_since

NOW = 1_800_000_000.0


def _msg(level: int, seq: int, published: float, delivered: int = 1) -> Msg:
    """A work message as JetStream delivers it: the ack subject carries stream, sequence, count and time stamp."""
    reply = (f"$JS.ACK.{names.ADS_STREAM}.{names.level_consumer(level)}.{delivered}.{seq}.{seq}."
             f"{int(published * 1e9)}.0")
    return Msg(None, subject=names.level_subject(level), reply=reply, data=b"{}")  # type: ignore[arg-type]


def _status(code: str) -> Msg:
    return Msg(None, subject="_INBOX.x", data=b"", headers={names.HDR_STATUS: code})  # type: ignore[arg-type]


def test_a_worker_says_per_level_since_when_its_oldest_unstarted_first_delivery_waits() -> None:
    """Its prefetch buffer and its long polls' inboxes both count; a redelivery (a retry: its wait counts from its
    ``retryAt``, unread here) and a pull's status answer do not."""
    buffer = PrefetchBuffer()
    for m in (_msg(5, 1, NOW - 3), _msg(5, 2, NOW - 9, delivered=2), _msg(2, 3, NOW - 1)):
        buffer.push(m, delivery_key(m, NOW, 10.0))
    inbox = Inbox()
    for m in (_status("408"), _msg(5, 4, NOW - 7), _msg(4, 5, NOW - 2)):
        inbox.put_nowait(m)
    got = unstarted_since(buffer, inbox.waiting())
    assert got == {5: NOW - 7, 2: NOW - 1, 4: NOW - 2}
    assert len(buffer) == 3 and inbox.qsize() == 3  # looked at, not taken
    assert unstarted_since(PrefetchBuffer(), ()) == {}


def _worker(name: str, since: dict[int, float]) -> NodeInfo:
    at = datetime.fromtimestamp(NOW, timezone.utc)
    return NodeInfo.model_validate({
        "id": name, "role": "worker", "host": "h", "pid": 1, "version": "0", "startedAt": at, "heartbeatAt": at,
        "unstartedSince": {str(lv): datetime.fromtimestamp(t, timezone.utc).isoformat() for lv, t in since.items()}})


def test_a_levels_oldest_age_is_the_older_of_its_queue_head_and_the_oldest_ad_a_worker_holds_unstarted() -> None:
    """P5 has nothing pending (its ad sits in a worker's inbox): its age is the held ad's, not None; P3's head is
    older than what is held there; P1 holds nothing. Counts stay JetStream's."""
    nodes = [_worker("a", {5: NOW - 12.5, 3: NOW - 2}), _worker("b", {5: NOW - 4}),
             NodeInfo.model_validate({"id": "api", "role": "api", "host": "h", "pid": 2, "version": "0",
                                      "startedAt": NOW, "heartbeatAt": NOW})]
    held = held_since(nodes)
    assert held == {5: NOW - 12.5, 3: NOW - 2}
    depths = with_held([LevelDepth(1, 4, oldest_age=1.0), LevelDepth(3, 2, 1, oldest_age=6.0),
                        LevelDepth(5, 0, 2, oldest_age=None)], held, NOW)
    assert [(d.level, d.pending, d.ack_pending, d.oldest_age) for d in depths] == [
        (1, 4, 0, 1.0), (3, 2, 1, 6.0), (5, 0, 2, 12.5)]
    assert held_since(None) == {}


def test_an_urgent_ad_held_unstarted_past_max_wait_is_late_though_nothing_is_pending() -> None:
    """The autoscaler's late-level rule read the oldest age only of a level with ads pending: an urgent ad held
    unstarted for 12 s (pending 0, ack pending 3) did not count as late."""
    observed = Observation(at=0.0, levels=[LevelDepth(1, 0, 3, oldest_age=12.0)], ack_pending=3, arrival_rate=0.0,
                           completion_rate=0.0, per_worker_rate=40.0, current_replicas=1, metrics_age_s=1.0)
    decision = ScalingPolicy(AutoscalerSettings()).decide(observed)
    assert "oldest p1 12.0s > 10s" in decision.reason, decision.reason
