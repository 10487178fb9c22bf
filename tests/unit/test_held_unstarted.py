"""attack30a F1, the pure parts: what a worker's heartbeat says of the ads it holds unstarted (``unstartedSince``),
how the sampler counts them in a level's oldest age, and the autoscaler's late-level rule reading it. No servers."""

from __future__ import annotations

from datetime import datetime, timezone
from types import SimpleNamespace

import pytest
from nats.aio.msg import Msg

from gamead_core import names
from gamead_core.config.autoscaler import AutoscalerSettings
from gamead_core.queue.aging import delivery_key
from gamead_core.queue.depth import LevelDepth
from gamead_core.queue import inbox as inbox_module
from gamead_core.queue.long_poll import Inbox, LongPolls
from gamead_core.registry import NodeInfo
from gamead_core.scaling.policy import Observation, ScalingPolicy
from gamead_core.stats.unstarted import held_since, with_held
from gamead_core.worker.prefetch import PrefetchBuffer
from gamead_core.worker.unstarted import unstarted_since, waited_since

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


def test_an_inbox_ad_delivered_longer_than_ack_wait_ago_is_not_said_held(monkeypatch: pytest.MonkeyPatch) -> None:
    """review30 F1: nothing renews an ad a long poll left in an inbox, so after ``queue.ack_wait`` JetStream
    redelivers it to another worker that may run it. The inbox copy was still said held unstarted, and its age grew
    until a slot freed (up to ``worker.task_timeout``). Here ack_wait is 30 s: at 40 s the P5 ad delivered at 0 s is
    left out, the P5 one delivered at 25 s counts; taking the first from the inbox keeps the times in step."""
    clock = SimpleNamespace(now=1000.0)
    monkeypatch.setattr(inbox_module, "time", SimpleNamespace(monotonic=lambda: clock.now))  # (the inboxes' clock)
    polls = LongPolls(None, 5.0, range(1), lambda _: True)  # type: ignore[arg-type]  # no NATS: inboxes only
    inbox = polls.inbox[(5, 0)]
    inbox.put_nowait(_msg(5, 1, NOW - 50))
    clock.now += 25
    inbox.put_nowait(_msg(5, 2, NOW - 30))
    clock.now += 15
    assert unstarted_since(polls.unstarted(30.0)) == {5: NOW - 30}
    assert unstarted_since(polls.unstarted()) == {5: NOW - 50}  # no ack_wait given: all
    assert inbox.get_nowait().metadata.sequence.stream == 1
    clock.now += 20  # the second now came 35 s ago
    assert unstarted_since(polls.unstarted(30.0)) == {} and inbox.qsize() == 1


def _worker(name: str, since: dict[int, float], beat_age: float = 0.0, state: str = "ok",
            interval: float | None = 2.0) -> NodeInfo:
    """A worker's registry entry: last beat ``beat_age`` s before NOW, beating every ``interval`` s."""
    at = datetime.fromtimestamp(NOW - beat_age, timezone.utc)
    return NodeInfo.model_validate({
        "id": name, "role": "worker", "host": "h", "pid": 1, "version": "0", "startedAt": at, "heartbeatAt": at,
        "state": state, "heartbeatInterval": interval,
        "unstartedSince": {str(lv): datetime.fromtimestamp(t, timezone.utc).isoformat() for lv, t in since.items()}})


def test_a_levels_oldest_age_is_the_older_of_its_queue_head_and_the_oldest_ad_a_worker_holds_unstarted() -> None:
    """P5 has nothing pending (its ad sits in a worker's inbox): its age is the held ad's, not None; P3's head is
    older than what is held there; P1 holds nothing. Counts stay JetStream's."""
    nodes = [_worker("a", {5: NOW - 12.5, 3: NOW - 2}), _worker("b", {5: NOW - 4}),
             NodeInfo.model_validate({"id": "api", "role": "api", "host": "h", "pid": 2, "version": "0",
                                      "startedAt": NOW, "heartbeatAt": NOW})]
    held = held_since(nodes, NOW)
    assert held == {5: NOW - 12.5, 3: NOW - 2}
    depths = with_held([LevelDepth(1, 4, oldest_age=1.0), LevelDepth(3, 2, 1, oldest_age=6.0),
                        LevelDepth(5, 0, 2, oldest_age=None)], held, NOW)
    assert [(d.level, d.pending, d.ack_pending, d.oldest_age) for d in depths] == [
        (1, 4, 0, 1.0), (3, 2, 1, 6.0), (5, 0, 2, 12.5)]
    assert held_since(None, NOW) == {}


def test_an_urgent_ad_held_unstarted_past_max_wait_is_late_though_nothing_is_pending() -> None:
    """The autoscaler's late-level rule read the oldest age only of a level with ads pending: an urgent ad held
    unstarted for 12 s (pending 0, ack pending 3) did not count as late."""
    observed = Observation(at=0.0, levels=[LevelDepth(1, 0, 3, oldest_age=12.0)], ack_pending=3, arrival_rate=0.0,
                           completion_rate=0.0, per_worker_rate=40.0, current_replicas=1, metrics_age_s=1.0)
    decision = ScalingPolicy(AutoscalerSettings()).decide(observed)
    assert "oldest p1 12.0s > 10s" in decision.reason, decision.reason


def test_a_stale_fenced_or_draining_workers_figure_is_not_counted() -> None:
    """review30 F1: a fenced worker (its beats cannot be written) or one stopped keeps its last entry until
    ``registry.ttl``, saying it holds a P5 ad unstarted that it handed back long ago: its age kept growing. Only a
    worker that beat within 1.5 of its intervals, not draining, counts; the rest are left out."""
    nodes = [_worker("fresh", {5: NOW - 6, 2: NOW - 1}, beat_age=2.9),  # 1.45 beats of 2 s
             _worker("fenced", {5: NOW - 60, 1: NOW - 60}, beat_age=3.1),  # 1.55 beats
             _worker("draining", {3: NOW - 60}, state="draining"), _worker("old", {4: NOW - 60}, interval=None)]
    assert held_since(nodes, NOW) == {5: NOW - 6, 2: NOW - 1}
    [p5] = with_held([LevelDepth(5, 0, 3, oldest_age=None)], held_since(nodes, NOW), NOW)
    assert p5.oldest_age == 6.0  # not 60: what /v1/stats, top and the gauge show


def _decide(nodes: list[NodeInfo], **settings: float) -> tuple[int, str]:
    """The autoscaler at 1 replica, 40 ads/s each, 1,000 young P2 ads pending, nothing pending at P1 and P5; the
    levels' oldest ages counting what ``nodes`` hold unstarted, as the sampler reads them."""
    levels = with_held([LevelDepth(1, 0, 1, oldest_age=None), LevelDepth(2, 1000, 0, oldest_age=1.0),
                        LevelDepth(5, 0, 2, oldest_age=None)], held_since(nodes, NOW), NOW)
    observed = Observation(at=0.0, levels=levels, ack_pending=3, arrival_rate=0.0, completion_rate=0.0,
                           per_worker_rate=40.0, current_replicas=1, metrics_age_s=1.0)
    decision = ScalingPolicy(AutoscalerSettings(target_drain_seconds=300, **settings)).decide(observed)
    return decision.desired, decision.reason


def test_a_fenced_workers_stale_figure_does_not_scale_up() -> None:
    """review30 F1: a P1 ad (urgent rule) or a P5 ad (``max_age_seconds``) a fenced worker said it held 100 s ago
    made that level late, and the 1,000 P2 ads ahead of it had to drain in 10 s: 3 replicas. From a fresh entry it
    still does; from a stale one the count stays 1 (the work drains in 300 s at 40 ads/s)."""
    for held, settings in (({1: NOW - 100}, {}), ({5: NOW - 100}, {"max_age_seconds": 10, "max_wait_seconds": 200})):
        assert _decide([_worker("w", held, beat_age=1.0)], **settings)[0] == 3
        desired, reason = _decide([_worker("w", held, beat_age=10.0)], **settings)
        assert desired == 1 and "oldest" not in reason, reason


def test_held_unstarted_ads_only_mark_a_level_late_and_the_reason_says_so() -> None:
    """review30 F2: with nothing pending at or above the late level, an urgent ad held unstarted 12 s adds nothing
    to the urgent term (it is counted in "delivered" already): the count is the one the work alone gives, and the
    reason line says the age is of held ads that add no backlog, not a late backlog it does not act on."""
    levels = [LevelDepth(1, 0, 3, oldest_age=12.0), LevelDepth(5, 400, 0, oldest_age=1.0)]
    observed = Observation(at=0.0, levels=levels, ack_pending=3, arrival_rate=0.0, completion_rate=0.0,
                           per_worker_rate=4.0, current_replicas=1, metrics_age_s=1.0)
    decision = ScalingPolicy(AutoscalerSettings()).decide(observed)
    assert decision.desired == 4  # ceil(403 / 30 s / 4 ads/s): as with the held ad not late
    assert "(oldest p1 12.0s > 10s, held unstarted: adds no backlog) + 3 delivered" in decision.reason, decision.reason


def test_the_buffer_keeps_each_ads_wait_from_its_push_and_says_the_same() -> None:
    # session 33: taken once per ad as it is buffered (waited_since), not for every buffered ad at every announcement
    buffer = PrefetchBuffer()
    msgs = (_msg(5, 1, NOW - 3), _msg(5, 2, NOW - 9, delivered=2), _msg(2, 3, NOW - 1), _status("408"))
    for m in msgs:
        buffer.push(m, delivery_key(m, NOW, 10.0) if m.data else NOW, waited_since(m))
    assert waited_since(msgs[0]) == (5, NOW - 3) and waited_since(msgs[1]) is None and waited_since(msgs[3]) is None
    assert unstarted_since(known=buffer.waiting()) == unstarted_since(buffer) == {5: NOW - 3, 2: NOW - 1}
    buffer.pop()
    assert unstarted_since(known=buffer.waiting()) == unstarted_since(buffer)
