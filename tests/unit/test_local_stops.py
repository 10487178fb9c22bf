"""Which of ``gamead up``'s workers a scale-down stops (upquiet50), pure: unhealthy first, then the quiet, then the
fewest ads running and held (the Kubernetes marks' rule, :func:`~gamead_core.scaling.removal.removal_rank`), the
newest among equals. Before: unhealthy first, then the newest, quiet or not, busy or not."""

from __future__ import annotations

from datetime import datetime, timezone

from gamead_core.registry.wire import HeldAd, NodeInfo
from gamead_core.scaling.local_stops import Running, Stop, stops_note, to_stop

NOW = datetime(2026, 12, 6, 7, 0, tzinfo=timezone.utc)


def _entry(worker_id: str, pid: int, *, quiet: bool = False, in_flight: int = 0, held: int = 0,
           state: str = "ok") -> NodeInfo:
    holding = [HeldAd(ad_id=f"a{i}", delivery=f"{i}.1", ack_subject="$JS.ACK.x") for i in range(held)]
    return NodeInfo(id=worker_id, role="worker", host="h", pid=pid, version="0", started_at=NOW, heartbeat_at=NOW,
                    quiet=quiet, in_flight=in_flight, holding=holding, state=state)


def _running(*healthy: bool) -> list[Running]:
    """worker-1 … worker-N (local-k, pid 100 + k), oldest first."""
    return [Running(f"worker-{k}", f"local-{k}", 100 + k, ok) for k, ok in enumerate(healthy, start=1)]


def _stops(stops: list[Stop]) -> list[tuple[str, str]]:
    return [(s.worker, s.why) for s in stops]


def test_the_drill_the_quiet_oldest_worker_goes_not_the_busy_newest() -> None:
    """``gamead up --workers 3``, ``gamead workers quiet local-1``, ads on local-2 and local-3: 3→2 stopped local-3
    (the newest, busy) and local-1 stayed; now local-1 goes."""
    entries = [_entry("local-1", 101, quiet=True), _entry("local-2", 102, in_flight=1),
               _entry("local-3", 103, in_flight=1)]
    assert _stops(to_stop(_running(True, True, True), 1, entries)) == [("local-1", "quiet")]


def test_unhealthy_then_quiet_then_by_ads_running_then_held_the_newest_among_equals() -> None:
    workers = _running(True, True, True, True, True, False, True)
    entries = [_entry("local-1", 101, in_flight=2), _entry("local-2", 102, held=1), _entry("local-3", 103),
               _entry("local-4", 104, quiet=True, in_flight=1), _entry("local-5", 105),
               _entry("local-6", 106, quiet=True), _entry("local-7", 107, in_flight=1)]
    assert _stops(to_stop(workers, 7, entries)) == [
        ("local-6", "unhealthy"), ("local-4", "quiet"), ("local-5", "idle"), ("local-3", "idle"),
        ("local-2", "running 0"), ("local-7", "running 1"), ("local-1", "running 2")]
    assert [s.name for s in to_stop(workers, 2, entries)] == ["worker-6", "worker-4"]
    assert to_stop(workers, 0, entries) == []


def test_an_entry_counts_only_for_its_own_process_and_a_worker_without_one_ranks_as_idle() -> None:
    """local-1's entry is a dead predecessor's (another pid), local-2 has none yet, local-3's is draining (no
    candidate's): all three rank as idle workers, after the quiet local-4, the newest first; busy local-5 last."""
    entries = [_entry("local-1", 999, quiet=True), _entry("local-3", 103, state="draining"),
               _entry("local-4", 104, quiet=True), _entry("local-5", 105, in_flight=3),
               _entry("api-h-1", 1)]
    assert _stops(to_stop(_running(True, True, True, True, True), 5, entries)) == [
        ("local-4", "quiet"), ("local-3", "not registered"), ("local-2", "not registered"),
        ("local-1", "not registered"), ("local-5", "running 3")]


def test_with_the_entries_unread_the_unhealthy_then_the_newest_go_as_before() -> None:
    assert _stops(to_stop(_running(True, False, True), 2, None)) == [("local-2", "unhealthy"), ("local-3", "newest")]


def test_the_note_names_the_stopped_workers_and_why() -> None:
    stops = to_stop(_running(True, True), 2, [_entry("local-1", 101, quiet=True), _entry("local-2", 102)])
    assert stops_note(stops) == " (stops local-1 (quiet), local-2 (idle))"
    assert stops_note([]) == ""
    many = [Stop(f"worker-{k}", f"local-{k}", "idle") for k in range(1, 8)]
    assert stops_note(many).endswith("local-5 (idle) and 2 more)")
