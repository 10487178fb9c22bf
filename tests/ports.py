"""Loopback ports a test names before the process that listens there has started (flake42).

:func:`gamead_core.embedded.free_port` says a port was free *when it looked*. A test that passes one to a process
started later (a worker's ``worker.metrics_port``, a NATS URL whose server comes only later in the test) leaves it
to any other process of a parallel run meanwhile: a fresh clone's ``make test`` (freshG, 9cf5311a) failed
test_worker_metrics_before_nats with ``ConfigError: port 13702 … is taken by another process``, the NATS port it
picked having been taken in the 30 s the worker waited for NATS. Here a port is held for the test until the
moment its listener starts (:class:`ReservedPort`), and a worker's metrics port taken before the worker bound it is
picked again (:func:`start_metered_worker`), as :func:`tests.support.start_api` does for the API's.
"""

from __future__ import annotations

import socket
from pathlib import Path
from types import TracebackType
from typing import Any

from gamead_core.embedded import PICKED_STARTS, free_port
from gamead_core.proc import alive, port_owned_by
from tests.support import Proc, start_worker, wait_for, wait_worker_ready

#: what ``gamead worker`` says (exit 5) when its ``worker.metrics_port`` is taken (README, tests/test_taken_ports)
TAKEN = "is taken by another process"


class ReservedPort:
    """A loopback TCP port held by this process until :meth:`release`: bound, not listening, without
    ``SO_REUSEADDR``, so no other process can bind it (neither a listener with ``SO_REUSEADDR`` nor a kernel pick of
    ``bind(host, 0)``) and :func:`free_port` elsewhere never offers it, while a client connecting there is refused
    (RST) exactly as when nothing is there. Release it just before starting the process that listens on it.
    A context manager (released on exit). Raises ``AssertionError`` if no pick could be held in
    ``PICKED_STARTS`` tries."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        for _ in range(PICKED_STARTS):
            sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
            port = free_port(host)
            try:
                sock.bind((host, port))
            except OSError:  # taken between free_port's look and this bind
                sock.close()
                continue
            self.port, self._sock = port, sock
            return
        raise AssertionError(f"no free port on {host} could be held in {PICKED_STARTS} picks")

    def release(self) -> int:
        """Let the port go (idempotent); the port."""
        self._sock.close()
        return self.port

    def __enter__(self) -> ReservedPort:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.release()


def start_metered_worker(nats_url: str, log_dir: Path, *, ready: bool = False, timeout: float = 30,
                         **kwargs: Any) -> tuple[Proc, int]:
    """:func:`tests.support.start_worker` with ``/metrics`` on a free loopback port (``worker.metrics_port``),
    returned once the worker holds that port's listener (and with ``ready``, once it pulls): the worker and its
    port. A pick another process took before the worker bound it (the worker exits 5 saying the port ``is taken``)
    is given up for another, up to ``PICKED_STARTS`` times. ``kwargs``: ``start_worker``'s (``worker_id``,
    ``concurrency``, environment variables). Raises ``AssertionError`` if the worker exits for another reason or
    does not listen within ``timeout`` seconds."""
    for attempt in range(PICKED_STARTS):
        port = free_port()  # bound at the worker's start-up: taken meanwhile, it exits 5 and is picked again
        worker = start_worker(nats_url, log_dir, GAMEAD_WORKER__METRICS_PORT=str(port),
                              GAMEAD_WORKER__METRICS_HOST="127.0.0.1", **kwargs)

        def listening(worker: Proc = worker, port: int = port) -> bool:
            if not worker.alive():
                return True
            assert worker.popen is not None
            owned = port_owned_by(worker.popen.pid, port)
            if owned is None and not alive(worker.popen.pid):
                # it ended (exit 5: taken), and the fork server reaped it before its report of the exit reached us:
                # not a listener (it passed for one: a full run's worker "held" the port another process had)
                return False
            return owned is not False  # None: /proc cannot tell

        try:
            wait_for(listening, timeout=timeout, what=f"worker {worker.name} to listen on {port} (/metrics)")
            if worker.alive():
                if ready:
                    wait_worker_ready(worker, timeout=timeout)
                return worker, port
        except BaseException:
            worker.stop()  # not yet the caller's to stop
            raise
        if TAKEN not in worker.output() or attempt == PICKED_STARTS - 1:
            raise AssertionError(f"worker {worker.name} exited during start-up:\n{worker.output()[-3000:]}")
    raise AssertionError("unreachable")
