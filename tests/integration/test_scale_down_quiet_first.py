"""A Kubernetes scale-down removes the quiet worker, not a busy one (left49): before it patches ``replicas`` down by
k, the autoscaler marks k workers' pods (quiet first, then idle) with ``controller.kubernetes.io/pod-deletion-cost``.

Against the HTTP double of ``test_kubernetes_backend`` (the official client on the wire), whose Deployment deletes
pods as the ReplicaSet controller does (the lowest deletion cost first, then the most recently created). Before, no
pod was marked: 3→1 deleted the two newest, the busy worker's among them, and the quiet one stayed.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
from nats.js import JetStreamContext

from gamead_core.embedded import EmbeddedNats
from gamead_core.registry.wire import NodeInfo
from gamead_core.scaling.apply import apply_replicas
from gamead_core.scaling.loop import Autoscaler
from gamead_core.scaling.removal import mark_cost
from gamead_core.scaling.store import Override, ScaleStore
from tests.integration.test_kubernetes_backend import (
    COST,
    DEPLOYMENT,
    NS,
    SCALE_PATH,
    ApiDouble,
    _at,
    _no_proxy,
    _run_autoscaler,
    api,
    make_scaler,
)
from tests.support import Proc, ad, clean_env, run_gamead, start_api, start_worker, wait_for
from tests.waits import until

__all__ = ["_no_proxy", "api"]  # the fixtures, shared with test_kubernetes_backend

#: the pods of the three workers, oldest first (the double deletes the newest first at equal cost)
QUIET, IDLE, BUSY = "gamead-worker-6d5f8-q1x2z", "gamead-worker-6d5f8-i3y4w", "gamead-worker-6d5f8-b5v6u"
POD_PATH = f"/api/v1/namespaces/{NS}/pods/"


def _worker(worker_id: str, pod: str | None, *, quiet: bool = False, in_flight: int = 0,
            state: str = "ok") -> NodeInfo:
    now = datetime.now(timezone.utc)
    return NodeInfo(id=worker_id, role="worker", host=pod or "laptop", pid=7, version="0.1.0", started_at=now,
                    heartbeat_at=now, concurrency=2, in_flight=in_flight, quiet=quiet, state=state, pod=pod)


def _calls(api: ApiDouble) -> list[tuple[str, str]]:
    """The PATCHes the double received, in order: ``("pod", name)`` or ``("scale", replicas)``."""
    out = []
    for r in api.requests:
        path = r.path.split("?")[0]
        if r.method == "PATCH" and path.startswith(POD_PATH):
            out.append(("pod", path.removeprefix(POD_PATH)))
        elif r.method == "PATCH" and path == SCALE_PATH:
            out.append(("scale", str(json.loads(r.body)["spec"]["replicas"])))
    return out


def _scale_down(api: ApiDouble, tmp_path: Path, workers: list[NodeInfo], current: int, desired: int) -> str:
    """``apply_replicas`` current→desired through the Kubernetes scaler (its read first); the outcome's note."""
    async def run() -> str:
        with make_scaler(tmp_path, api.url) as scaler:
            assert await scaler.current_replicas_async() == current
            outcome = await apply_replicas(scaler, current, desired, workers=workers)
            assert outcome.applied is True and outcome.error is None, outcome
            return outcome.note
    return asyncio.run(run())


def test_the_quiet_pod_then_the_idle_one_are_marked_before_replicas_and_go_the_busy_one_stays(
    api: ApiDouble, tmp_path: Path
) -> None:
    api.replicas[(NS, DEPLOYMENT)], api.pods = 3, [QUIET, IDLE, BUSY]
    workers = [_worker("busy-1", BUSY, in_flight=2), _worker("quiet-1", QUIET, quiet=True),
               _worker("idle-1", IDLE), _worker("laptop-1", None)]  # one not in Kubernetes: never marked
    note = _scale_down(api, tmp_path, workers, 3, 1)
    assert _calls(api) == [("pod", QUIET), ("pod", IDLE), ("scale", "1")]  # marked first, then replicas
    assert api.removed == [QUIET, IDLE] and api.pods == [BUSY]  # before: [BUSY, IDLE], the quiet one stayed
    costs = {pod: int(api.annotations[pod][COST]) for pod in (QUIET, IDLE)}
    assert costs[QUIET] < costs[IDLE] < 0, costs
    assert note == f" (removes first: {QUIET} (quiet-1, quiet), {IDLE} (idle-1, idle))"


def test_a_mark_left_by_an_earlier_scale_down_does_not_win_over_the_quiet_one(api: ApiDouble, tmp_path: Path) -> None:
    """A scale-down whose PATCH of replicas never came (a refused call, a leader that died) left the busy pod marked
    an hour ago: the quiet pod marked now is lower still, so it goes; a draining worker is no candidate."""
    api.replicas[(NS, DEPLOYMENT)], api.pods = 3, [QUIET, IDLE, BUSY]
    api.annotations[BUSY] = {COST: str(mark_cost(time.time() - 3600, quiet=True))}
    workers = [_worker("busy-1", BUSY, in_flight=1), _worker("quiet-1", QUIET, quiet=True),
               _worker("idle-1", IDLE, state="draining")]
    note = _scale_down(api, tmp_path, workers, 3, 2)
    assert _calls(api) == [("pod", QUIET), ("scale", "2")]
    assert api.removed == [QUIET], api.annotations
    assert note == f" (removes first: {QUIET} (quiet-1, quiet))"


def test_without_rbac_on_pods_the_scale_down_still_happens_and_says_why_kubernetes_picked(
    api: ApiDouble, tmp_path: Path
) -> None:
    """An older Role (no ``patch`` on ``pods``): one PATCH refused 403, no other tried, replicas patched all the
    same, and the decision says what is missing."""
    api.replicas[(NS, DEPLOYMENT)], api.pods, api.pod_patch_fail_with = 3, [QUIET, IDLE, BUSY], 403
    note = _scale_down(api, tmp_path, [_worker("quiet-1", QUIET, quiet=True), _worker("idle-1", IDLE)], 3, 1)
    assert _calls(api) == [("pod", QUIET), ("scale", "1")]
    assert note.startswith(f" (could not mark the pods to remove first: forbidden to patch pod {QUIET} in namespace "
                           f"{NS} (HTTP 403): RBAC must grant verb 'patch' on resource 'pods' in the core API group "
                           "(manifests/base/rbac.yaml). Server: "), note
    assert note.endswith("; Kubernetes picks which go)"), note


def test_marks_that_landed_before_the_calls_deadline_are_named_the_rest_said_cut(
    api: ApiDouble, tmp_path: Path
) -> None:
    """The quiet pod's PATCH answered, the idle one's answered a byte at a time past the call's deadline (2 ×
    ``request_timeout``): the call is cut, the scale-down goes on, and the note names the quiet pod as marked (the
    ReplicaSet deletes it first). Before: the timeout reached ``_mark_first`` and the note said none was marked."""
    api.replicas[(NS, DEPLOYMENT)], api.pods, api.pod_trickled = 3, [QUIET, IDLE, BUSY], IDLE

    async def run() -> str:
        with make_scaler(tmp_path, api.url, timeout=1) as scaler:
            assert await scaler.current_replicas_async() == 3
            outcome = await apply_replicas(scaler, 3, 1, workers=[_worker("quiet-1", QUIET, quiet=True),
                                                                    _worker("idle-1", IDLE)])
            assert outcome.applied is True and outcome.error is None, outcome
            return outcome.note
    note = asyncio.run(run())
    assert _calls(api) == [("pod", QUIET), ("pod", IDLE), ("scale", "1")]
    assert api.removed[0] == QUIET, api.removed  # marked: the first to go
    assert note.startswith(f" (marked {QUIET} (quiet-1, quiet) to go first, then could not mark the pods to remove "
                           f"first: the call to patch the deletion cost of 2 pod(s) in {NS} did not end within 2s"), \
        note  # before: " (could not mark the pods to remove first: the call to patch …", none named
    assert note.endswith("it was cut; Kubernetes picks which go)"), note


def test_with_the_registry_unread_no_pod_is_marked_and_the_line_says_why(api: ApiDouble, tmp_path: Path) -> None:
    api.replicas[(NS, DEPLOYMENT)], api.pods = 2, [QUIET, BUSY]
    note = _scale_down(api, tmp_path, None, 2, 1)  # type: ignore[arg-type] - the reading had no registry
    assert _calls(api) == [("scale", "1")] and api.removed == [BUSY]
    assert note == " (the workers could not be read: Kubernetes picks which pods go)"


#: the node id of the test's own (Kubernetes) autoscaler
NODE = "k8s-quiet"


def _listed(http: httpx.Client) -> dict[str, dict[str, Any]]:
    return {n["id"]: n for n in http.get("/v1/workers", params={"role": "worker"}).json().get("items") or []}


def test_the_autoscaler_scaling_real_workers_down_removes_the_quiet_ones_pod_not_the_busy_ones(
    api: ApiDouble, tmp_path: Path, fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc]
) -> None:
    """Three real workers, each told its pod (env ``POD_NAME``, as the downward API sets it): busy-1 runs a 60 s
    ad, quiet-1 is quiet (``gamead workers quiet``), idle-1 idle. ``gamead scale set 1`` (3→1): the autoscaler
    marks quiet-1's then idle-1's pod, then patches replicas; the Deployment deletes those two, busy-1's stays, and
    the decision names them. Before: the two newest went, busy-1's among them, with its ad."""
    server = fresh_nats()
    front, url = start_api(server.url, tmp_path)
    procs.append(front)
    beat = {"GAMEAD_REGISTRY__HEARTBEAT_INTERVAL": "0.5"}
    procs.append(start_worker(server.url, tmp_path, worker_id="busy-1", ready=True, POD_NAME=BUSY,
                              GAMEAD_ANALYSIS__SIMULATED_LATENCY_MS="60000", **beat))
    with httpx.Client(base_url=url, timeout=20) as http:
        assert http.post("/ads", json=ad("Busy for a minute", priority=3)).status_code == 202
        wait_for(lambda: (_listed(http).get("busy-1") or {}).get("inFlight") == 1, timeout=20, what="busy-1 runs it")
        for worker_id, pod in (("quiet-1", QUIET), ("idle-1", IDLE)):
            procs.append(start_worker(server.url, tmp_path, worker_id=worker_id, ready=True, POD_NAME=pod, **beat))
        told = run_gamead("workers", "quiet", "quiet-1", env=clean_env(GAMEAD_API_URL=url))
        assert told.returncode == 0, told.stderr
        want = {"busy-1": (BUSY, 1, False), "quiet-1": (QUIET, 0, True), "idle-1": (IDLE, 0, False)}
        wait_for(lambda: {i: (n.get("pod"), n.get("inFlight"), n.get("quiet")) for i, n in _listed(http).items()}
                 == want, timeout=20, what=f"the workers' entries, each naming its pod (pod, inFlight, quiet): {want}")
    api.pods = [QUIET, IDLE, BUSY]
    settings = _at(api, tmp_path, 3)

    async def scenario(autoscaler: Autoscaler, js: JetStreamContext) -> None:
        now = time.time()
        await ScaleStore(js).put_override(Override(1, now + 300, now, "alice"), expected=0)
        await until(lambda: api.replicas[(NS, DEPLOYMENT)] == 1, timeout=30, what="the override applied")

    autoscaler = _run_autoscaler(server, settings, NODE, scenario)
    assert api.removed == [QUIET, IDLE] and api.pods == [BUSY]  # before: [BUSY, IDLE], busy-1's ad with it
    assert _calls(api) == [("pod", QUIET), ("pod", IDLE), ("scale", "1")]  # marked first, then replicas
    # its own: the API's autoscaler (backend none) shares the decisions and, leading a tick, advises 3→1 too
    # (load57 fc2: two such lines, "too many values to unpack"; at load ~20 it wrote "0→1 (backend none)" only)
    [scaled] = [d for d in autoscaler.shared.decisions
                if d["desired"] == 1 and d["current"] == 3 and d["leader"] == NODE]
    assert f"removes first: {QUIET} (quiet-1, quiet), {IDLE} (idle-1, idle)" in scaled["reason"], scaled
