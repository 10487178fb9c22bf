"""Which pods a Kubernetes scale-down marks to go first (left49), pure: quiet, then idle, then the least busy."""

from __future__ import annotations

from datetime import datetime, timezone

from gamead_core.registry.nodes import this_pod
from gamead_core.registry.wire import HeldAd, NodeInfo
from gamead_core.scaling.removal import COST_EPOCH, MAX_MARKS, mark_cost, removal_note, to_remove

NOW = datetime(2026, 12, 6, 4, 0, tzinfo=timezone.utc)


def _w(worker_id: str, pod: str | None = None, *, quiet: bool = False, in_flight: int = 0, held: int = 0,
       state: str = "ok", role: str = "worker") -> NodeInfo:
    holding = [HeldAd(ad_id=f"a{i}", delivery=f"{i}.1", ack_subject="$JS.ACK.x") for i in range(held)]
    return NodeInfo(id=worker_id, role=role, host="h", pid=1, version="0", started_at=NOW, heartbeat_at=NOW,
                    quiet=quiet, in_flight=in_flight, holding=holding, state=state,
                    pod=pod if pod is not None else f"gamead-worker-x-{worker_id}")


def test_quiet_first_then_by_what_they_run_and_hold_and_never_a_draining_or_podless_one() -> None:
    workers = [_w("busy", in_flight=2), _w("held", held=1), _w("idle"), _w("quiet-busy", quiet=True, in_flight=1),
               _w("draining", state="draining"), _w("gone", state="gone"), _w("api", role="api"),
               _w("local-1", pod=""), _w("bad", pod="Not_A_Pod")]
    marks = to_remove(workers, 9, COST_EPOCH + 100.0)
    assert [(m.worker, m.why) for m in marks] == [("quiet-busy", "quiet"), ("idle", "idle"),
                                                   ("held", "running 0"), ("busy", "running 2")]
    assert [m.cost for m in marks] == [-201, -200, -200, -200]
    assert [m.worker for m in to_remove(workers, 2, COST_EPOCH)] == ["quiet-busy", "idle"]
    assert to_remove(workers, 0, COST_EPOCH) == []
    many = [_w(f"w{i}") for i in range(MAX_MARKS + 5)]
    assert len(to_remove(many, MAX_MARKS + 5, COST_EPOCH)) == MAX_MARKS


def test_every_mark_is_lower_than_every_earlier_one_and_fits_the_annotations_int32() -> None:
    earlier = [mark_cost(COST_EPOCH + s, quiet) for s in range(0, 5) for quiet in (False, True)]
    assert earlier == sorted(earlier, reverse=True) and len(set(earlier)) == len(earlier)
    assert mark_cost(2_840_140_800, True) > -(2**31)  # 2060-01-01: still ordered
    assert mark_cost(4_102_444_800, True) == -(2**31)  # 2100: the lowest an int32 holds, never an invalid value


def test_the_note_names_the_marked_pods_or_why_kubernetes_picks() -> None:
    marks = to_remove([_w("q", quiet=True), _w("i")], 3, COST_EPOCH)
    assert removal_note(marks, 3) == (" (removes first: gamead-worker-x-q (q, quiet), gamead-worker-x-i (i, idle); "
                                      "Kubernetes picks the other 1)")
    assert removal_note([], 2) == " (no worker names its pod (env POD_NAME): Kubernetes picks which pods go)"
    assert removal_note(marks[:1], 2, "HTTP 500").startswith(" (marked gamead-worker-x-q (q, quiet) to go first, "
                                                              "then could not mark the pods to remove first: HTTP 500")
    assert removal_note([], 0) == ""


def test_a_worker_names_its_pod_only_from_a_pod_name_in_pod_name() -> None:
    assert this_pod({"POD_NAME": "gamead-worker-6d5f8-q1x2z"}) == "gamead-worker-6d5f8-q1x2z"
    assert this_pod({}) is None and this_pod({"POD_NAME": "../etc"}) is None and this_pod({"POD_NAME": ""}) is None
