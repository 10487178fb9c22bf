"""Pure: the id claim's rules (gamead_core.registry.claim, attack44 F1): how long a start watches a held key, and
what counts as the holder's renewal."""

from __future__ import annotations

from datetime import datetime, timezone

from gamead_core.registry.claim import WATCH_MARGIN, id_taken, renewed_by_other, watch_for
from gamead_core.registry.wire import NodeInfo

_T0 = datetime(2026, 12, 5, tzinfo=timezone.utc)


def _node(pid: int, interval: float | None = 2.0) -> NodeInfo:
    return NodeInfo(id="local-1", role="worker", host="vm", pid=pid, version="x", started_at=_T0, heartbeat_at=_T0,
                    heartbeat_interval=interval)


def test_the_watch_lasts_the_holders_beat_plus_the_margin_never_past_the_ttl() -> None:
    assert watch_for(_node(1, 5.0), 2.0, 10.0) == 5.0 + WATCH_MARGIN
    assert watch_for(_node(1, None), 2.0, 10.0) == 2.0 + WATCH_MARGIN  # an older node: this node's interval
    assert watch_for(_node(1, 3600.0), 2.0, 10.0) == 10.0 + WATCH_MARGIN


def test_only_another_processs_new_write_is_a_renewal() -> None:
    me, holder = _node(2), _node(1)
    assert renewed_by_other(7, 8, holder, me)
    assert not renewed_by_other(7, 7, holder, me)  # unchanged: not a beat
    assert not renewed_by_other(7, 8, None, me)  # a delete mark: a clean stop
    assert not renewed_by_other(7, 8, _node(2), me)  # this very process


def test_the_refusal_names_the_holder() -> None:
    line = id_taken("local-1", _node(4242), 0.43, 3.0).message
    assert "the id local-1 is held by a live process: host vm, pid 4242, heartbeat 0.4 s ago" in line
    assert "choose another --id" in line and "\n" not in line
