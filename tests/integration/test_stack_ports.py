"""stacks16 item 1: a stack never joins or answers for another one on the same machine.

Before: stack A (``GAMEAD_EMBEDDED__NATS_PORT=P``), its ``up`` stopped (SIGSTOP) and its nats-server killed,
then stack B with the same variable: B's port check passed, B's nats-server took P, and once A was continued its
API and worker reconnected to B's NATS — an ad sent to A was analysed by B and stored only in B. The same with A's
API port taken by B during a restart gap. Now a port a running ``up`` keeps for its children's restarts is
claimed machine-wide (``gamead_core.port_claims``): B is refused at once, exit 5, one line naming A's pid and
data dir; A, continued, restarts its child on its port. Real ``gamead up`` processes, stopped by their PIDs."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import httpx
import pytest

from tests.support import UpStack, up_stack, wait_for


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.mark.timeout(300)
@pytest.mark.parametrize("child", ["nats-server", "api"])
def test_a_port_a_stopped_stack_keeps_for_a_restart_is_refused_to_another_stack(tmp_path: Path, child: str) -> None:
    first = up_stack(tmp_path, "--workers", "0", name="sA", picked_env=("GAMEAD_EMBEDDED__NATS_PORT",)).start()
    second: UpStack | None = None
    try:
        first.wait_ready()
        nats_port = int(first.env["GAMEAD_EMBEDDED__NATS_PORT"])  # picked by the harness (again if it was lost)
        os.kill(first.pid, signal.SIGSTOP)  # a restart's gap that lasts: nobody restarts the child meanwhile
        victim = first.pid_of(child)
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: not Path(f"/proc/{victim}/fd").exists() or not os.listdir(f"/proc/{victim}/fd"),
                 timeout=30, what=f"A's {child} to let go of its port")
        port = nats_port if child == "nats-server" else first.port
        second = up_stack(tmp_path, "--workers", "0", port=port if child == "api" else None, name="sB",
                          GAMEAD_EMBEDDED__NATS_PORT=str(nats_port if child == "nats-server" else 0)).start()
        assert second.popen is not None
        wait_for(lambda: second.popen.poll() is not None or "Press Ctrl-C" in second.output(), timeout=120,
                 what="B to end or come up")
        out = " ".join(second.output().split())
        assert second.popen.poll() == 5, out[-2000:]
        assert (f"error: port {port} is reserved by another `gamead up` (pid {first.pid}, data dir "
                f"{first.data_dir.resolve()}) for its {'embedded nats-server' if child == 'nats-server' else 'API'}"
                ) in out, out[-2000:]
        os.kill(first.pid, signal.SIGCONT)  # A restarts its child on its own port
        wait_for(lambda: first.running_pid(child) not in (None, victim), timeout=60, what=f"A's {child} restarted")
        if child == "api":
            wait_for(lambda: _ready(first.url), timeout=90, what="A's API ready again")
    finally:
        if second is not None:
            second.stop()
        first.stop()


@pytest.mark.timeout(300)
def test_the_embedded_nats_servers_monitoring_port_is_the_one_configured(tmp_path: Path) -> None:
    """newcomer35 F1: ``gamead up`` watched its nats-server on a port the kernel picked (``watched on
    http://127.0.0.1:11599/healthz``), which no setting could choose (a firewall's or another tool's range). Now
    ``embedded.nats_monitor_port`` names it: the start line gives it and nats-server answers its ``/healthz`` there."""
    stack = up_stack(tmp_path, "--workers", "0", name="sM", picked_env=("GAMEAD_EMBEDDED__NATS_MONITOR_PORT",))
    try:
        said = " ".join(stack.start().wait_ready().split())
        port = int(stack.env["GAMEAD_EMBEDDED__NATS_MONITOR_PORT"])  # picked by the harness (again if it was lost)
        assert f"watched on http://127.0.0.1:{port}/healthz" in said, said[-2000:]
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
    finally:
        stack.stop()
