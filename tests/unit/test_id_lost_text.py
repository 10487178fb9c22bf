"""regress45: the one line of a worker whose id another process took over (SIGSTOPped past registry.ttl, a start
under its id meanwhile) printed the other's start as Python's ``str(datetime)``: ``started 2026-12-05
18:39:52.700824+00:00``, a form no other gamead line or answer uses. Now the API's form of a time (``iso_z``), as
``startedAt`` in ``gamead workers -o json``, where the operator finds that process."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from gamead_core.registry.owner import id_lost
from gamead_core.registry.wire import NodeInfo

_T0 = datetime(2026, 12, 5, 18, 39, 52, 700824, tzinfo=timezone.utc)


def _node(pid: int, started: datetime) -> NodeInfo:
    return NodeInfo(id="dupX", role="worker", host="vm", pid=pid, version="x", started_at=started,
                    heartbeat_at=started)


def test_the_taken_over_line_gives_the_others_start_as_the_api_does() -> None:
    line = str(id_lost(_node(1, _T0 - timedelta(minutes=1)), _node(2, _T0)))
    assert "(host vm, pid 2, started 2026-12-05T18:39:52.700Z: its startedAt in gamead workers -o json)" in line
    assert "+00:00" not in line


def test_a_start_read_in_another_zone_is_said_in_utc() -> None:
    other = _node(2, _T0.astimezone(timezone(timedelta(hours=2))))
    assert "started 2026-12-05T18:39:52.700Z" in str(id_lost(_node(1, _T0), other))
