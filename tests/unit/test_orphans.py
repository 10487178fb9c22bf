"""The pure rules of gamead_core.worker.orphans: which API deaths, whose records, which records."""

from __future__ import annotations

import os
import time

from hypothesis import given
from hypothesis import strategies as st

from gamead_core.models import AdRecord, AdStatus, utcnow
from gamead_core.registry import NodeInfo, api_incarnation, api_node_info, incarnation
from gamead_core.store.ads import encode
from gamead_core.worker.orphan_reput import fresh as _fresh
from gamead_core.worker.orphans import api_deaths
from tests.support import submission


@given(started=st.floats(0, 4e9))
def test_the_origin_an_api_writes_is_the_one_the_reaper_reads_from_its_heartbeat(started: float) -> None:
    """The API names its creates with ``api_incarnation`` (its clock's float); the reaper rebuilds it from the
    heartbeat after a JSON round trip (microseconds, a ``Z`` zone): the two must be the same string."""
    beat = NodeInfo.model_validate_json(api_node_info("api-h-1", started=started).model_dump_json(by_alias=True))
    assert incarnation(beat.id, beat.pid, beat.started_at) == api_incarnation("api-h-1", started)
    assert beat.pid == os.getpid()


def _api(node_id: str, started: float, pid: int = 7) -> NodeInfo:
    return api_node_info(node_id, started=started).model_copy(update={"pid": pid})


def test_an_api_is_dead_when_its_entry_goes_or_another_process_takes_its_id() -> None:
    now = time.time()
    a, b, c = _api("api-a-1", now), _api("api-b-1", now), _api("api-c-1", now)
    worker = a.model_copy(update={"id": "w1", "role": "worker"})
    before = {"api-a-1": a, "api-b-1": b, "api-c-1": c, "w1": worker}
    after = {"api-a-1": a.model_copy(update={"heartbeat_at": utcnow()}),  # alive: a later beat
             "api-c-1": _api("api-c-1", now + 5)}  # restarted under its id (a container restart)
    assert [n.id for n in api_deaths(before, after)] == ["api-b-1", "api-c-1"]  # never a worker (its reaper)


def test_only_a_fresh_unkeyed_queued_record_is_queued_again() -> None:
    record = AdRecord(id="01m8rx4g768h7dac2npzmbr1gh", status=AdStatus.QUEUED, priority=2, submitted_at=utcnow(),
                      ad=submission())
    assert _fresh(encode(record), record.id) == 2
    assert _fresh(encode(record), "01m8rx4g767aeweqpxwy2c9j3c") is None  # another key's bytes
    assert _fresh(b"not json", record.id) is None
    for changed in ({"idempotency_key": "k"}, {"replay_of": 3}, {"job_id": "j"}, {"attempts": 1},
                    {"status": AdStatus.COMPLETED}, {"delivery": "4.1"}):
        assert _fresh(encode(record.model_copy(update=changed)), record.id) is None, changed


def test_the_shutdown_line_promises_the_reaper_only_what_its_duplicate_window_lets_it_queue() -> None:
    """The API's shutdown line said the reaper settles every unsettled submit, but the reaper re-publishes only
    within ``queue.duplicate_window`` (less SAFETY) of the write, and sees the death ``registry.ttl`` + a round
    after it. Now the line says which are the reaper's and tells the operator to run ``gamead doctor --repair``
    for the rest; a configuration whose ttl eats the whole window is warned about at API start."""
    from gamead_core.config import GameadSettings
    from gamead_core.unsettled import left_at_shutdown
    from gamead_core.worker.orphans import SAFETY, reach_warning, reaper_reach

    default = GameadSettings()
    reach = reaper_reach(default)
    beats = default.registry
    assert reach == default.queue.duplicate_window - SAFETY - beats.ttl - beats.heartbeat_interval / 2
    assert reach > 0 and reach_warning(default) is None
    young = left_at_shutdown([1.0, 2.0], reach)
    # all the reaper's while the registry lives; a NATS restart loses it (attack40a F6: 20 ads queued for ever,
    # the line promised the reaper): past the window, the line names the doctor
    assert "reaper" in young and "restart of NATS" in young and "gamead doctor --repair" in young
    mixed = left_at_shutdown([1.0, reach + 5], reach)
    assert "1 were written more than" in mixed and "gamead doctor --repair" in mixed

    slow = GameadSettings.model_validate({"registry": {"ttl": 600}})  # longer than the 120 s duplicate window
    assert reaper_reach(slow) <= 0
    warning = reach_warning(slow)
    assert warning is not None and "registry.ttl (600s)" in warning and "gamead doctor --repair" in warning
    told = left_at_shutdown([0.0], reaper_reach(slow))
    assert "can queue none" in told and "gamead doctor --repair" in told


def test_a_dead_api_of_a_gamead_before_the_fence_is_not_settled_here() -> None:
    """Rolling upgrade (fix34b item 3): an API whose heartbeat says no ``fence`` (an older gamead, whose withdrawal
    is a blind delete) is not watched, its records left to the doctor; one that says it is (figure: 1 watched of
    the 2 deaths; before: both)."""
    from gamead_core.worker.orphans import Orphans

    now = time.time()
    new, old = _api("api-new-1", now), _api("api-old-1", now).model_copy(update={"fence": None})
    assert new.fence is not None
    orphans = Orphans()
    orphans.died(new)
    orphans.died(old)
    assert [d.node.id for d in orphans._watched.values()] == ["api-new-1"]
