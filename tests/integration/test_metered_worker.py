"""A worker's metrics port taken before the worker bound it is picked again (tests/ports.py, flake42).

Figure: the first pick held by another listener, the worker exits 5 ("is taken by another process") and
:func:`tests.ports.start_metered_worker` starts it on a second pick, which it holds; before (a ``free_port`` passed
as ``worker.metrics_port``, six tests) the test failed on a port someone else took."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from gamead_core.embedded import free_port
from gamead_core.proc import port_owned_by
from tests import ports
from tests.ports import ReservedPort, start_metered_worker


def test_a_taken_metrics_port_is_picked_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
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
