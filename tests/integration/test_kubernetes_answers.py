"""The Kubernetes API server's answers are read up to a bound (attack30b F1, F2), against the HTTP double of
``test_kubernetes_backend`` (the official client on the wire, a real socket)."""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import subprocess
import sys
import threading
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from gamead_core.config.autoscaler import KubernetesScalerSettings
from gamead_core.errors import ConfigError, GameadError
from gamead_core.scaling.backends import RETRY_BASE, LazyKubernetesScaler
from gamead_core.scaling.capped_answers import MAX_ANSWER_BYTES
from gamead_core.scaling.kubernetes import ScalerForbidden, ScalerUnavailable
from tests.integration.test_kubernetes_backend import (
    DEPLOYMENT,
    NS,
    TOKEN,
    ApiDouble,
    _no_proxy,
    api,
    make_scaler,
)
from tests.support import wait_for

__all__ = ["_no_proxy", "api"]  # the fixtures, shared with test_kubernetes_backend


@pytest.mark.parametrize("compressed", [False, True], ids=["64 MB", "gzip bomb, 64 MB inflated"])
def test_a_huge_answer_is_not_read_past_the_bound_and_the_next_call_works(
        api: ApiDouble, tmp_path: Path, compressed: bool) -> None:
    """A broken or hostile API server (or a proxy) answered 400 MB: the client read it whole and decoded it, the
    API node went to ~2 GB and its event loop stalled for seconds (``/healthz`` 3.8 s, the autoscaler lease lapsed
    five times). Now the answer is read to :data:`MAX_ANSWER_BYTES` (256 KiB), compressed or not, the call fails
    as unavailable saying why (a write may have landed: read back), and the next call, answered normally, works."""
    body = b'"' + b"x" * (64 * 1024**2) + b'"'
    api.huge_answer, api.huge_gzip = (gzip.compress(body, compresslevel=1), True) if compressed else (body, False)
    del body
    with make_scaler(tmp_path, api.url, timeout=20) as scaler:
        tracemalloc.start()
        try:
            with pytest.raises(ScalerUnavailable) as caught:
                scaler.current_replicas()
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        print(f"peak Python memory of the call: {peak / 1024**2:.1f} MB; {caught.value.message}")
        assert peak < 8 * 1024**2, peak  # before: the 64 MB answer, its decoded text and its JSON, several times
        assert f"with more than {MAX_ANSWER_BYTES} bytes (HTTP 200" in caught.value.message
        assert caught.value.sent  # unread, so a PATCH answered so may have landed: the caller reads back
        api.huge_answer = b""
        assert scaler.current_replicas() == 2


def test_a_long_server_message_is_cut_to_a_line_in_the_error(api: ApiDouble, tmp_path: Path) -> None:
    """A 403 whose ``Status.message`` is 200,000 characters (3 MB in the drill) was copied whole into each failed
    tick's log line and into the autoscaler's shared state (past ``nats.max_pending_bytes`` no decision could be
    recorded any more). The error keeps what it says about RBAC and at most 300 characters of the server's."""
    api.forbidden_message = "deployments.apps is forbidden " + "x" * 200_000
    with make_scaler(tmp_path, api.url) as scaler, pytest.raises(ScalerForbidden) as caught:
        scaler.current_replicas()
    message = caught.value.message
    assert "RBAC must grant verb 'get'" in message and "Server: deployments.apps is forbidden xxx" in message
    assert len(message) < 700 and message.endswith("…"), len(message)


def _exec_kubeconfig(path: Path, server: str, script: str) -> Path:
    """A kubeconfig whose user's token comes from an ``exec`` credential plugin running ``script`` (sh) first."""
    credential = json.dumps({"apiVersion": "client.authentication.k8s.io/v1beta1", "kind": "ExecCredential",
                             "status": {"token": TOKEN}})
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "double",
        "clusters": [{"name": "double", "cluster": {"server": server}}],
        "users": [{"name": "plugin", "user": {"exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1", "command": "sh",
            "args": ["-c", f"{script}; echo '{credential}'"], "interactiveMode": "Never"}}}],
        "contexts": [{"name": "double", "context": {"cluster": "double", "user": "plugin"}}],
    }))
    return path


def _reader(backend: LazyKubernetesScaler, error: type[GameadError]) -> Callable[[], int | str]:
    """A call reading the replica count through ``backend`` in a loop of its own: the count, or the message of the
    ``error`` it raised."""
    def read() -> int | str:
        try:
            return asyncio.run(backend.current_replicas_async())
        except error as exc:
            return exc.message

    return read


def test_the_backend_is_built_off_the_event_loop(api: ApiDouble, tmp_path: Path) -> None:
    """attack30b F4: the backend was built (the client imported, the kubeconfig loaded, its ``exec`` plugin run)
    on the API's event loop: a plugin taking 8 s made ``/healthz`` take 5.8 s, a kubeconfig the client took 45 s to
    refuse froze the node at every tick. Built in a thread, the loop runs while the plugin does."""
    started, ended = tmp_path / "started", tmp_path / "ended"
    kubeconfig = _exec_kubeconfig(tmp_path / "kc", api.url, f"touch {started}; sleep 2; touch {ended}")
    backend = LazyKubernetesScaler(KubernetesScalerSettings(namespace=NS, deployment=DEPLOYMENT,
                                                            kubeconfig=str(kubeconfig)))
    turns_during_the_plugin = 0

    async def run() -> int:
        nonlocal turns_during_the_plugin

        async def ticker() -> None:
            nonlocal turns_during_the_plugin
            while True:
                turns_during_the_plugin += started.exists() and not ended.exists()
                await asyncio.sleep(0.01)

        tick = asyncio.create_task(ticker())
        try:
            return await backend.current_replicas_async()
        finally:
            tick.cancel()

    try:
        assert asyncio.run(run()) == 2
    finally:
        backend.close()
    print(f"event loop turns while the exec plugin ran: {turns_during_the_plugin}")
    assert turns_during_the_plugin > 0  # before: 0, the loop blocked until the build returned


def test_a_refused_backend_is_not_built_again_until_its_file_changes_or_a_back_off_passes(
        api: ApiDouble, tmp_path: Path) -> None:
    """A kubeconfig that loads but is refused (here an address that is not http(s)) was loaded again at every
    tick, its plugin run again each time. Now the same error comes back at once until the file changes (then it is
    read at the next call and works) or :data:`RETRY_BASE` s pass."""
    runs = tmp_path / "runs"
    kubeconfig = _exec_kubeconfig(tmp_path / "kc", "ftp://127.0.0.1:1", f"echo run >> {runs}")
    now = [1000.0]
    backend = LazyKubernetesScaler(KubernetesScalerSettings(namespace=NS, deployment=DEPLOYMENT,
                                                            kubeconfig=str(kubeconfig)), clock=lambda: now[0])

    read = _reader(backend, ConfigError)
    try:
        said = [read() for _ in range(3)]
        assert len(runs.read_text().splitlines()) == 1 and len(set(said)) == 1, said  # before: 3 runs
        assert "cannot be used" in str(said[0])
        now[0] += RETRY_BASE + 0.1  # the back-off passed, the file unchanged: tried again
        assert read() == said[0] and len(runs.read_text().splitlines()) == 2
        _exec_kubeconfig(kubeconfig, api.url, f"echo run >> {runs}")  # fixed: read at the next call
        assert read() == 2 and len(runs.read_text().splitlines()) == 3
    finally:
        backend.close()


def test_an_answer_that_trickles_is_cut_at_the_calls_bound(api: ApiDouble, tmp_path: Path) -> None:
    """attack30b F5: an API server answering a byte every 2 s kept one GET running for good (``request_timeout``
    bounds each socket read, not the call): the autoscaler's tick never ended, nothing was logged, the leader kept its
    lease. Now the call is given up after 2 × ``request_timeout`` (a connect and a read), says so, and is cut: its
    thread ends (no thread piles up per tick); once the server answers properly, calls work again."""
    api.trickle = 0.2
    scaler = make_scaler(tmp_path, api.url, timeout=1)

    async def call() -> int | str:
        try:
            return await scaler.current_replicas_async()
        except ScalerUnavailable as exc:
            return exc.message

    def calls_running() -> int:
        return sum(t.name.startswith("gamead-kubernetes") for t in threading.enumerate())

    try:
        for _ in range(2):
            said = asyncio.run(call())
            assert "get deployments/scale of gamead-test/gamead-worker" in str(said), said
            assert "did not end within 2s (an answer still coming, a byte at a time?); it was cut" in str(said), said
            wait_for(lambda: calls_running() == 0, timeout=10, what="the cut call's thread to end")
        api.trickle = 0.0
        assert asyncio.run(call()) == 2
    finally:
        scaler.close()


def test_a_process_whose_call_trickles_still_exits(api: ApiDouble, tmp_path: Path) -> None:
    """The same drill's SIGINT: the API logged "Finished server process" and did not exit while the stuck call's
    thread (the loop's executor, joined at exit) waited for the answer. The call is cut now, and its thread a
    daemon."""
    api.trickle = 0.2
    make_scaler(tmp_path, api.url, timeout=1).close()  # writes the kubeconfig
    script = (
        "import asyncio\n"
        "from gamead_core.config.autoscaler import KubernetesScalerSettings\n"
        "from gamead_core.errors import ScalerUnavailable\n"
        "from gamead_core.scaling.kubernetes import KubernetesScaler\n"
        f"s = KubernetesScaler(KubernetesScalerSettings(namespace={NS!r}, deployment={DEPLOYMENT!r}, "
        f"kubeconfig={str(tmp_path / 'kubeconfig')!r}, context='double', request_timeout=1), environ={{}})\n"
        "try:\n"
        "    asyncio.run(s.current_replicas_async())\n"
        "except ScalerUnavailable as exc:\n"
        "    print('cut:', exc.message)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "NO_PROXY": "*"})
    assert done.returncode == 0 and "cut:" in done.stdout, (done.stdout, done.stderr[-2000:])


def test_credentials_a_failed_exec_plugin_left_out_are_built_again_after_a_401(api: ApiDouble, tmp_path: Path) -> None:
    """review30 F14: an ``exec`` credential plugin that failed once at the build (the client logs it and goes on
    without a token) left a scaler whose every call was 401, kept until a restart. A 401 now drops the scaler: after
    the back-off it is built again, the plugin runs again, and the call goes through."""
    runs, marker = tmp_path / "runs", tmp_path / "ok-now"
    kubeconfig = _exec_kubeconfig(tmp_path / "kc", api.url,
                                  f"echo run >> {runs}; [ -f {marker} ] || {{ touch {marker}; exit 1; }}")
    now = [1000.0]
    backend = LazyKubernetesScaler(KubernetesScalerSettings(namespace=NS, deployment=DEPLOYMENT,
                                                            kubeconfig=str(kubeconfig)), clock=lambda: now[0])

    read = _reader(backend, ScalerForbidden)
    try:
        first, again = read(), read()
        assert "rejected the credentials (401 Unauthorized)" in str(first) and again == first
        assert len(runs.read_text().splitlines()) == 1  # the back-off holds: not built again at once
        now[0] += RETRY_BASE + 0.1
        assert read() == 2 and len(runs.read_text().splitlines()) == 2  # before: 401 for good, the plugin run once
    finally:
        backend.close()
