"""A worker's metrics port taken before the worker bound it is picked again (tests/ports.py, flake42).

Figure: the first pick held by another listener, the worker exits 5 ("is taken by another process") and
:func:`tests.ports.start_metered_worker` starts it on a second pick, which it holds; before (a ``free_port`` passed
as ``worker.metrics_port``, six tests) the test failed on a port someone else took."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from gamead_core.embedded import free_port
from gamead_core.proc import port_owned_by
from tests import ports
from tests.ports import ReservedPort, start_metered_worker
from tests.support import ForkedChild


@pytest.mark.parametrize("report", ["prompt", "late"])
def test_a_taken_metrics_port_is_picked_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, report: str) -> None:
    """``late``: the fork server's report of a child's exit reaches pytest 2 s after the child is gone, as on a
    loaded machine (suite47's full run: ``assert 41455 != 41455``, the worker that exited 5 on the taken port taken
    for its listener, its /proc entry gone before its exit was known). Without tests/ports.py's fix this case fails
    every time (a plain ``Popen``, GAMEAD_TEST_FORKSERVER=0, has no such lag: both cases are the prompt one)."""
    if report == "late":
        ended: dict[int, float] = {}
        told = ForkedChild.poll

        def late(child: ForkedChild) -> int | None:
            code = told(child)
            if code is None:
                return None
            return code if time.monotonic() - ended.setdefault(child.pid, time.monotonic()) > 2 else None

        monkeypatch.setattr(ForkedChild, "poll", late)
    with socket.socket() as taken, ReservedPort() as nats_port:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        picks = iter([int(taken.getsockname()[1])])
        monkeypatch.setattr(ports, "free_port", lambda: next(picks, None) or free_port())
        worker, port = start_metered_worker(f"nats://127.0.0.1:{nats_port.port}", tmp_path)
        try:
            assert port != taken.getsockname()[1]
            assert worker.popen is not None and port_owned_by(worker.popen.pid, port)
        finally:
            worker.stop()
