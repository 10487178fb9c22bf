"""Test plumbing: real gamead processes on real servers, stopped by PID, and polling with a deadline."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import nats
import pytest

from gamead_core import names
from gamead_core.embedded import PICKED_STARTS, free_port, terminate
from gamead_core.models import AdSubmission
from gamead_core.proc import die_with_parent, start_time
from tests.dies_with_pytest import record

T = TypeVar("T")


#: the longest pause between two polls of :func:`wait_for` (unless a caller asks for a longer interval)
POLL_CEILING = 0.2


def hangs_once(title: str, task_timeout: float) -> dict[str, str]:
    """Env of a worker whose ad titled exactly ``title`` hangs on its first attempt (``worker.faults`` ``hang``, cut
    at ``worker.task_timeout`` = ``task_timeout`` s; its second attempt runs), with no prefetch and long polls that
    live 120 s: a busy worker whose polls hold what arrives meanwhile."""
    return {"GAMEAD_WORKER__PREFETCH": "0", "GAMEAD_QUEUE__IDLE_WAIT": "120",
            "GAMEAD_WORKER__TASK_TIMEOUT": f"{task_timeout:g}", "GAMEAD_WORKER__FAULTS__MODE": "hang",
            "GAMEAD_WORKER__FAULTS__RATE": "1", "GAMEAD_WORKER__FAULTS__MATCH": f"^{title}$",
            "GAMEAD_WORKER__FAULTS__ATTEMPTS": "1"}


def wait_for(probe: Callable[[], T], *, timeout: float = 10.0, interval: float = 0.05, what: str = "condition") -> T:
    """Poll ``probe`` until it returns something truthy, and return that; fail the test naming ``what`` after
    ``timeout`` seconds. The pause between polls starts at ``interval`` and grows by half each time, up to
    ``max(interval, POLL_CEILING)``: a state that comes at once is seen at once, and a long wait does not load
    a busy 2-core machine with polls (each one an HTTP request to a process under test, as often as not)."""
    deadline = time.monotonic() + timeout
    ceiling = max(interval, POLL_CEILING)
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(min(interval, max(0.0, deadline - time.monotonic())))
        interval = min(ceiling, interval * 1.5)
    last = probe()  # one last look at the deadline: a pause may have ended past it
    if last:
        return last
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def process_environ(pid: int) -> dict[str, str]:
    """The environment process ``pid`` started with (``/proc/PID/environ``; Linux), name → value."""
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode("utf-8", "replace").split("=", 1) for item in raw if b"=" in item)


def sigint_reaches_it() -> None:
    """``preexec_fn`` for a child a test interrupts with SIGINT: the default disposition, so that Python
    installs its Ctrl-C handler. A runner started as a background job (``make test &`` in a script) has SIGINT
    ignored, and an ignored signal stays ignored across ``exec``."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


@contextlib.contextmanager
def killed_if_left(cli: subprocess.Popen[str]) -> Iterator[subprocess.Popen[str]]:
    """``cli``, SIGKILLed and reaped on the way out if it is still running (a test that failed before it ended)."""
    try:
        yield cli
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()


def ctrl_c(cli: subprocess.Popen[str]) -> tuple[dict[str, Any], str]:
    """Ctrl-C (SIGINT) to a running ``gamead … -o json`` process (its stdin, a pipe, left open: the end is the
    Ctrl-C's, not the input's): its JSON summary and its stderr, once it exited 130 (asserted)."""
    cli.send_signal(signal.SIGINT)
    cli.wait(timeout=60)
    out, err = cli.communicate(timeout=60)
    assert cli.returncode == 130, (out[-300:], err)
    return json.loads(out), err


def clean_env(**extra: str) -> dict[str, str]:
    """The test runner's environment without any GAMEAD_* variable, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GAMEAD_")}
    env.update(extra)
    return env


class ForkedChild:
    """A process started by the fork server (``tests/forkserver.py``), with the part of
    :class:`subprocess.Popen`'s interface the tests use: ``pid``, ``returncode``, ``poll()``, ``wait()``,
    ``send_signal()``, ``terminate()``, ``kill()``. Its exit status comes from the server, which reaps it."""

    def __init__(self, server: ForkServer, pid: int, args: list[str], child: int) -> None:
        self._server, self.pid, self.args = server, pid, args
        self.child = child  #: the server's number for it (its pid may be another child's once it ended)

    @property
    def returncode(self) -> int | None:
        return self._server.exit_code(self.child)

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        code = self._server.wait_exit(self.child, timeout)
        if code is None:
            raise subprocess.TimeoutExpired(self.args, timeout or 0)
        return code

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


#: a test's ``gamead up`` forks its own children (the API, workers) from a zygote of its own (``tests/up_zygote.py``)
#: instead of starting fresh interpreters; ``GAMEAD_TEST_FORKSERVER_UP=0``: fresh interpreters, as in production
UP_CHILDREN_FORKED = os.environ.get("GAMEAD_TEST_FORKSERVER_UP", "1") != "0"


class ForkServer:
    """This pytest process's fork server (see ``tests/forkserver.py``): ``start(args, env, log)`` runs
    ``python -m gamead_cli <args>`` in a forked child of a process that has already imported gamead."""

    _instance: ForkServer | None = None
    _failed = False

    @classmethod
    def get(cls) -> ForkServer | None:
        """The running server, started on first use; None if disabled (``GAMEAD_TEST_FORKSERVER=0``) or
        if it cannot start (then every process gets a fresh interpreter)."""
        if os.environ.get("GAMEAD_TEST_FORKSERVER", "1") == "0" or cls._failed:
            return None
        if cls._instance is None or cls._instance.popen.poll() is not None:
            try:
                cls._instance = cls()
            except (OSError, RuntimeError) as exc:
                cls._failed = True
                print(f"fork server unavailable, using fresh interpreters: {exc}", file=sys.stderr)
                return None
        return cls._instance

    def __init__(self) -> None:
        import threading

        self._lock = threading.Lock()
        self._changed = threading.Condition()
        # Children are known by their request's number, not their pid: once a child ended, the kernel gives its
        # pid to a later process, another child of ours too (pid_max 32768 wraps in minutes on a busy machine; a
        # child's exit read by pid was then an earlier child's: exit 0 or 1 with no output, load hunt 59)
        self._pids: dict[int, int] = {}  # request id → pid
        self._running: dict[int, int] = {}  # pid → request id, while that child runs
        self._codes: dict[int, int] = {}  # request id → exit code
        self.cpu: dict[int, float] = {}  # request id → CPU seconds it used, once it ended
        self.started: dict[int, list[str]] = {}  # request id → its gamead arguments
        self._next = 0
        script = Path(__file__).with_name("forkserver.py")
        import socket

        # requests that hand the child its stdin/stdout/stderr (tests/forked_popen.py) come on this socket
        self.channel, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        # No PR_SET_PDEATHSIG here (it follows the starting *thread*, and a test may start its first process
        # from a thread): the server exits when its stdin closes, which the kernel does when pytest dies.
        self.popen = subprocess.Popen(
            [sys.executable, str(script), "--fds", str(theirs.fileno())], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True, pass_fds=[theirs.fileno()],
        )
        theirs.close()
        assert self.popen.stdout is not None
        ready = self.popen.stdout.readline()
        if not ready.startswith(b'{"ready"'):
            self.popen.kill()
            self.popen.wait()
            raise RuntimeError(f"the fork server did not start (said {ready!r})")
        self._reader = threading.Thread(target=self._read, name="forkserver-reader", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            message = json.loads(line)
            with self._changed:
                if "exit" in message:  # (the server reaps a child before its pid can be another's: in order)
                    if (child := self._running.pop(int(message["exit"]), None)) is not None:
                        self._codes[child] = int(message["code"])
                        self.cpu[child] = float(message.get("cpu", 0.0))
                else:
                    self._pids[int(message["id"])] = int(message["pid"])
                    self._running[int(message["pid"])] = int(message["id"])
                self._changed.notify_all()
        with self._changed:  # the server is gone, and its children with it (PR_SET_PDEATHSIG)
            for child in self._pids:
                self._codes.setdefault(child, -signal.SIGTERM)
            self._changed.notify_all()

    def start(self, args: list[str], env: dict[str, str], log: Path | None, *, cwd: Path | str | None = None,
              err: Path | None = None, fds: list[int] | None = None, closed: tuple[int, ...] = (),
              nofile: tuple[int, int] | None = None, ctty: bool = False) -> ForkedChild:
        """Fork ``gamead <args>`` with ``env`` in ``cwd`` (default: this process's working directory), output
        appended to ``log`` (stderr to ``err`` if given, else to ``log`` too), stdin ``/dev/null``; or, given
        ``fds`` (three descriptors, ``log`` unused), with those as its stdin, stdout and stderr (the caller keeps
        and closes its own copies), of which those numbered in ``closed`` (0-2) are then closed in the child, its
        ``sys.stdin``/``stdout``/``stderr`` None (a shell's ``>&-``); ``nofile``: its ``RLIMIT_NOFILE`` (soft,
        hard), set in the child as ``prlimit --nofile=SOFT:HARD`` would; ``ctty`` (with ``fds``): the terminal on its
        stdin becomes its controlling terminal (``TIOCSCTTY``, in its new session). ``RuntimeError`` if the server
        does not answer or is gone."""
        with self._lock:
            self._next += 1
            request = self._next
            message = {"id": request, "args": args, "env": env, "cwd": str(cwd or os.getcwd()),
                       "log": str(log), "err": str(err) if err else None,
                       "zygote": args[:1] == ["up"] and UP_CHILDREN_FORKED, "closed": list(closed),
                       "nofile": list(nofile) if nofile else None, "ctty": ctty}
            try:
                if fds is not None:
                    import socket

                    socket.send_fds(self.channel, [json.dumps(message).encode()], fds)
                else:
                    assert self.popen.stdin is not None
                    self.popen.stdin.write(json.dumps(message).encode() + b"\n")
                    self.popen.stdin.flush()
            except OSError as exc:
                raise RuntimeError(f"the fork server is gone: {exc}") from exc
        with self._changed:
            if not self._changed.wait_for(lambda: request in self._pids or self.popen.poll() is not None, 30):
                raise RuntimeError("the fork server did not answer")
            if request not in self._pids:
                raise RuntimeError("the fork server died")
            self.started[request] = args
            return ForkedChild(self, self._pids[request], args, request)

    @classmethod
    def shutdown(cls) -> None:
        """Stop this process's server (closing its stdin; any child still running gets SIGTERM), and reap it."""
        server, cls._instance = cls._instance, None
        if server is None:
            return
        assert server.popen.stdin is not None
        server.popen.stdin.close()
        server.channel.close()
        try:
            server.popen.wait(10)
        except subprocess.TimeoutExpired:
            server.popen.kill()
            server.popen.wait()
        if report := os.environ.get("GAMEAD_TEST_FORKSERVER_REPORT"):  # CPU per process, for whoever tunes
            with open(f"{report}.{os.getpid()}", "w") as out:
                for child, args in server.started.items():
                    out.write(json.dumps({"pid": server._pids[child], "args": args, "cpu": server.cpu.get(child)})
                              + "\n")

    def exit_code(self, child: int) -> int | None:
        """The exit code of the child numbered ``child`` (:attr:`ForkedChild.child`), None while it runs."""
        with self._changed:
            return self._codes.get(child)

    def wait_exit(self, child: int, timeout: float | None) -> int | None:
        """:meth:`exit_code` once the child ended, or None after ``timeout`` seconds."""
        with self._changed:
            self._changed.wait_for(lambda: child in self._codes, timeout)
            return self._codes.get(child)


#: environment variables read when an interpreter starts: a process that sets one differently from pytest
#: needs a fresh interpreter, not a fork of the server
_STARTUP_ENV = ("PYTHON", "LC_", "LANG")


#: ... but for this one, which the fork server's child does itself (``faulthandler.enable()``, tests/forkserver.py)
_DONE_IN_THE_CHILD = ("PYTHONFAULTHANDLER",)


#: ``prlimit --nofile=SOFT:HARD`` before a command (tests of the open-files bound): a forked child sets it itself
_NOFILE = re.compile(r"--nofile=(\d+):(\d+)")


def _limited(argv: list[str]) -> tuple[list[str], tuple[int, int] | None]:
    """``argv`` without a leading ``prlimit --nofile=SOFT:HARD``, and those limits (None: no such prefix). Pure."""
    if len(argv) > 2 and argv[0] == "prlimit" and (found := _NOFILE.fullmatch(argv[1])):
        return argv[2:], (int(found[1]), int(found[2]))
    return argv, None


def _forkable(argv: list[str], env: dict[str, str]) -> bool:
    if argv[:3] != [sys.executable, "-m", "gamead_cli"]:
        return False

    def startup(environ: dict[str, str]) -> dict[str, str]:
        return {k: v for k, v in environ.items() if k.startswith(_STARTUP_ENV) and k not in _DONE_IN_THE_CHILD}

    return startup(env) == startup(dict(os.environ))


@dataclass
class Proc:
    """A gamead child process with its log file."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    popen: subprocess.Popen[bytes] | ForkedChild | None = field(default=None, repr=False)
    cwd: Path | None = None  #: its working directory (default: pytest's)

    def start(self) -> Proc:
        """Start it: a ``gamead`` command through the fork server (:class:`ForkServer`), anything else (or
        with the server off) as a fresh process. Either way in a session of its own, dying with pytest."""
        self.log.parent.mkdir(parents=True, exist_ok=True)
        argv, nofile = _limited(self.argv)  # a `prlimit --nofile` start is forked too (~1.5 CPU-s of imports each)
        server = ForkServer.get() if _forkable(argv, self.env) else None
        if server is not None:
            self.popen = server.start(argv[3:], self.env, self.log, cwd=self.cwd, nofile=nofile)
            record(self.popen.pid)  # the fork server's child: ended by pytest's undertaker too
            return self
        dies_with_pytest = die_with_parent()

        def preexec() -> None:  # dies with pytest, however it dies; a test's SIGINT reaches it
            if dies_with_pytest is not None:
                dies_with_pytest()
            sigint_reaches_it()

        with open(self.log, "ab") as out:
            self.popen = subprocess.Popen(
                self.argv, env=self.env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, preexec_fn=preexec, cwd=self.cwd,
            )
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def signal(self, sig: int) -> None:
        if self.alive():
            os.kill(self.pid, sig)

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout``. Returns the exit code."""
        return None if self.popen is None else terminate(self.popen, timeout)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        if self.popen is not None:
            self.popen.wait()

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def gamead_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "gamead_cli", *args]


def run_gamead(*args: str, env: dict[str, str], cwd: Path | str | None = None, timeout: float = 60,
               errors: str = "strict") -> subprocess.CompletedProcess[str]:
    """``gamead <args>`` run to its end in a real process of its own, as ``subprocess.run(gamead_argv(*args),
    env=env, cwd=cwd, capture_output=True, text=True, stdin=DEVNULL, timeout=timeout, errors=errors)`` would: its
    exit code, its stdout and stderr apart (decoded, newlines translated, as text mode does). Forked by the fork
    server (:class:`ForkServer`) when it can be: no interpreter start and imports (~1.1 s of CPU per command);
    else (fork server off, or an ``env`` read at interpreter start that differs) a fresh interpreter.
    ``TimeoutExpired`` after ``timeout`` seconds, the process SIGKILLed, as ``subprocess.run`` does."""
    argv = gamead_argv(*args)
    server = ForkServer.get() if _forkable(argv, env) else None
    if server is None:
        return subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, errors=errors)
    import locale
    import tempfile

    def text(path: Path) -> str:
        data = path.read_bytes().decode(locale.getpreferredencoding(False), errors)
        return data.replace("\r\n", "\n").replace("\r", "\n")

    with tempfile.TemporaryDirectory(prefix="gamead-run-") as tmp:
        out, err = Path(tmp) / "stdout", Path(tmp) / "stderr"
        child = server.start(list(args), env, out, cwd=cwd, err=err)
        try:
            code = child.wait(timeout)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(30)
            raise subprocess.TimeoutExpired(argv, timeout, output=text(out), stderr=text(err)) from None
        return subprocess.CompletedProcess(argv, code, text(out), text(err))


class PortTaken(AssertionError):
    """The API could not bind its port: another process took it between :func:`free_port` and the bind."""


def check_port_taken(proc: Proc, url: str) -> None:
    """Raise :class:`PortTaken` if the API ``proc`` (on ``url``) said it could not bind its port."""
    if "address already in use" in proc.output():
        raise PortTaken(f"API {url} could not bind its port:\n{proc.output()[-1000:]}")


def wait_api_ready(proc: Proc, url: str, timeout: float = 30) -> None:
    """Poll ``/readyz`` until 200; fail at once, with the log, if the process died or its port was taken
    (:class:`PortTaken`: ``/readyz`` then answers from whoever holds the port, or not at all)."""

    def is_ready() -> bool:
        check_port_taken(proc, url)
        if not proc.alive():
            raise AssertionError(f"API exited during start-up:\n{proc.output()[-3000:]}")
        try:
            return httpx.get(f"{url}/readyz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(is_ready, timeout=timeout, what=f"API {url} ready")


def on_a_free_port(start: Callable[[int], T], port: int | None = None) -> T:
    """``start(port)``, or, without ``port``, ``start`` on a port picked with :func:`free_port` and picked again
    when ``start`` raises :class:`PortTaken` (another process of this shared machine took it between the pick and
    the bind: a full parallel run did, once), up to ``PICKED_STARTS`` times; a port the caller chose is not.
    ``start`` stops what it started before it raises."""
    for attempt in range(PICKED_STARTS):
        try:
            return start(port or free_port())
        except PortTaken:
            if port is not None or attempt == PICKED_STARTS - 1:
                raise
    raise AssertionError("unreachable")


def serve_ready(proc: Proc, port: int) -> tuple[Proc, str]:
    """Start ``proc`` (a ``gamead serve`` on ``port``) and wait for its ``/readyz`` 200; on :class:`PortTaken`,
    stop it and raise (for :func:`on_a_free_port`)."""
    url = f"http://127.0.0.1:{port}"
    proc.start()
    try:
        wait_api_ready(proc, url)
    except PortTaken:
        proc.stop(timeout=10)
        raise
    return proc, url


def start_api(
    nats_url: str, log_dir: Path, *, ready: bool = True, port: int | None = None, **env: str
) -> tuple[Proc, str]:
    """``gamead serve`` on ``nats_url`` and ``port`` (a free one by default, :func:`on_a_free_port`); with
    ``ready``, return once ``/readyz`` answers 200."""
    def start(chosen: int) -> tuple[Proc, str]:
        proc = Proc("api", gamead_argv("serve", "--port", str(chosen)), clean_env(GAMEAD_NATS__URL=nats_url, **env),
                    log_dir / f"api-{chosen}.log")
        if not ready:
            return proc.start(), f"http://127.0.0.1:{chosen}"
        return serve_ready(proc, chosen)

    return on_a_free_port(start, port)


def start_worker(nats_url: str, log_dir: Path, *, worker_id: str = "w1", concurrency: int = 1, ready: bool = False,
                 **env: str) -> Proc:
    """``gamead worker`` on ``nats_url``; with ``ready``, return once it pulls (see :func:`wait_worker_ready`)."""
    proc = Proc(
        worker_id,
        gamead_argv("worker", "--id", worker_id, "--concurrency", str(concurrency)),
        clean_env(GAMEAD_NATS__URL=nats_url, **env),
        log_dir / f"worker-{worker_id}.log",
    ).start()
    if ready:
        wait_worker_ready(proc)
    return proc


def wait_worker_ready(proc: Proc, timeout: float = 30) -> None:
    """Wait until the worker has its topology and pulls (it logs ``worker started``); fail at once, with its
    log, if it exited."""

    def started() -> bool:
        if not proc.alive():
            raise AssertionError(f"worker {proc.name} exited during start-up:\n{proc.output()[-3000:]}")
        return '"worker started"' in proc.output()

    wait_for(started, timeout=timeout, what=f"worker {proc.name} to start")


SAMPLE_AD = {
    "title": "Dragon Kingdom: Rise to Power",
    "description": "Build your kingdom, train your dragons, and conquer new territories!",
    "genre": "Strategy",
    "targetAudience": ["18-34", "Strategy Gamers"],
    "visualElements": ["Dragons", "Castle", "Battle Scenes"],
    "callToAction": "Download Now & Claim 1000 Free Gems!",
    "duration": 30,
    "priority": 2,
}


#: The CLI tests' sample ad (an RPG: the analyser's genre table has words for it).
RPG_AD: dict[str, object] = {
    "title": "Dragon Quest Legends",
    "description": "Epic fantasy RPG adventure with dragons and loot",
    "genre": "rpg",
    "targetAudience": ["18-34", "rpg fans"],
    "visualElements": ["dragons", "epic battles"],
    "callToAction": "Download now",
    "duration": 30,
    "priority": 2,
}


def submission(**fields: object) -> AdSubmission:
    """A minimal valid :class:`AdSubmission` for pure tests (title ``t``, genre RPG), with ``fields`` over it."""
    base: dict[str, object] = {"title": "t", "description": "d", "genre": "RPG", "call_to_action": "Play",
                               "duration": 30}
    return AdSubmission(**{**base, **fields})  # type: ignore[arg-type]


def drop_gamead_env(monkeypatch: pytest.MonkeyPatch, cwd: Path) -> Path:
    """No ``GAMEAD_*`` variable in the environment and ``cwd`` as the working directory (so no ./config.yaml is
    picked up): the test sees only the configuration it writes. Returns ``cwd``."""
    for name in list(os.environ):
        if name.startswith("GAMEAD_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(cwd)
    return cwd


def ad(title: str, priority: int = 3, **fields: object) -> dict[str, object]:
    """A valid submission with ``title`` and ``priority``."""
    return {**SAMPLE_AD, "title": title, "priority": priority, **fields}


#: times an ad whose request got no answer (its connection dropped) is sent again, with its key (submit_concurrently)
RESENDS = 3


def submit_concurrently(url: str, bodies: list[dict[str, Any]], *, threads: int = 8,
                        timeout: float = 10.0) -> list[str]:
    """``POST /ads`` each of ``bodies`` from ``threads`` threads, each with an ``httpx.Client`` of its own (one
    client shared by threads once failed a cluster test with ``ReadError: [Errno 9] Bad file descriptor`` on a
    loaded CI); every answer must be 202. The ids, in the order of ``bodies``.

    Each ad goes with an ``Idempotency-Key`` of its own and is sent again when its request got no answer (a
    connection dropped, :data:`RESENDS` times at most), as ``gamead submit`` does: a kept-alive connection the API
    closes for idle time as a request goes out on it is a race HTTP leaves to the client (RFC 9112 §9.3.1), which a
    client stalled for seconds at load meets (load59A: ``RemoteProtocolError: Server disconnected without sending a
    response`` on a connection's 11th request, test_cluster_partitions at load ~35); the key makes the resend safe."""
    local = threading.local()
    clients: list[httpx.Client] = []
    lock = threading.Lock()

    def submit(body: dict[str, Any]) -> str:
        if not hasattr(local, "client"):
            local.client = httpx.Client(base_url=url, timeout=timeout)
            with lock:
                clients.append(local.client)
        key = f"submit-{uuid.uuid4().hex}"
        for sent in range(RESENDS + 1):
            try:
                resp = local.client.post("/ads", json=body, headers={"Idempotency-Key": key})
                break
            except (httpx.ReadError, httpx.RemoteProtocolError):  # no answer: the same keyed ad sent again
                if sent == RESENDS:
                    raise
        assert resp.status_code == 202, resp.text
        return str(resp.json()["id"])

    try:
        with ThreadPoolExecutor(threads) as pool:
            return list(pool.map(submit, bodies))
    finally:
        for client in clients:
            client.close()


def accepted_again(client: httpx.Client, title: str, *, timeout: float, what: str) -> str:
    """The id of an ad ``title`` (priority 1) the API behind ``client`` accepts, posted until it answers 202 (a
    503 or no answer meanwhile: a restart, a reconnection to NATS) within ``timeout`` seconds."""
    def post() -> str | None:
        try:
            answer = client.post("/ads", json=ad(title, 1))
        except httpx.HTTPError:
            return None
        return answer.json()["id"] if answer.status_code == 202 else None

    return wait_for(post, timeout=timeout, interval=0.2, what=what)


def wait_terminal(client: httpx.Client, ad_id: str, timeout: float = 20.0) -> dict[str, object]:
    def probe() -> dict[str, object] | None:
        record = client.get(f"/ads/{ad_id}").json()
        return record if record.get("status") in ("completed", "failed", "dead") else None

    return wait_for(probe, timeout=timeout, interval=0.05, what=f"ad {ad_id} to finish")


def pid_alive(pid: int) -> bool:
    """True if ``pid`` runs and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def all_threads_stopped(pid: int) -> bool:
    """True once every thread of ``pid`` is in the stopped state (``T``/``t`` in /proc/<pid>/task/*/stat)."""
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
        return bool(tasks) and all((t / "stat").read_text().rsplit(")", 1)[1].split()[0] in "Tt" for t in tasks)
    except OSError:
        return False


def thread_waits(pid: int) -> tuple[str, list[str]]:
    """Where the threads of ``pid`` sleep in the kernel (``/proc/<pid>/task/<tid>/wchan``): ``(its main thread's,
    [its other threads', in no set order])``, the other threads read first and the main thread last. ``poll…``:
    waiting on a socket; ``futex…``: on a lock, an event, a semaphore or the GIL; ``0``: running or runnable. A
    thread that ended meanwhile is left out; ``("", [])`` once ``pid`` is gone. Linux ``/proc``."""
    def wchan(task: Path) -> str | None:
        try:
            return (task / "wchan").read_text()
        except OSError:
            return None

    try:
        tasks = [task for task in Path(f"/proc/{pid}/task").iterdir() if task.name != str(pid)]
    except OSError:
        return "", []
    others = [wait for wait in map(wchan, tasks) if wait is not None]
    return wchan(Path(f"/proc/{pid}/task/{pid}")) or "", others


@contextlib.contextmanager
def frozen(pid: int, *, timeout: float = 10.0) -> Iterator[None]:
    """A process of the test's own, stopped (SIGSTOP by PID) inside the block and resumed (SIGCONT) on the way out.

    ``kill`` returns before the stop takes effect: a loaded machine let a nats-server answer a flush sent just
    after its SIGSTOP (CI, session 6). The block starts only once every thread of the process is stopped."""
    os.kill(pid, signal.SIGSTOP)
    try:
        wait_for(lambda: all_threads_stopped(pid), timeout=timeout, interval=0.005, what=f"process {pid} to stop")
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def children_of(parent: int) -> list[int]:
    """PIDs whose parent is ``parent`` (from /proc), but for the zygote of a test's ``gamead up`` (named
    ``up-zygote``, ``tests/up_zygote.py``: a process of the tests, not one ``up`` started)."""
    kids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                name, rest = (entry / "stat").read_text().rsplit(")", 1)
                if int(rest.split()[1]) == parent and not name.endswith("(up-zygote"):
                    kids.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return kids


# --- `gamead up` as a user runs it, and everything it started found by PID -------------------------------


@dataclass
class UpStack:
    """A real ``gamead up`` process. Its children are read from the PID file it writes
    (``<data_dir>/gamead-up.json``, with start times), never by scanning command lines."""

    data_dir: Path
    port: int
    argv: list[str]
    env: dict[str, str]
    out: Path
    popen: subprocess.Popen[bytes] | ForkedChild | None = field(default=None, repr=False)
    seen: dict[int, int | None] = field(default_factory=dict, repr=False)  # pid → start time
    #: the API port was picked here (:func:`up_stack`), not by the test: another one is picked if it is taken
    picked: bool = False
    #: the variables of :attr:`env` whose port was picked here (:func:`up_stack`'s ``picked_env``): picked again too
    picked_env: tuple[str, ...] = ()
    _from: int = field(default=0, repr=False)  #: where this start's output begins in ``out``
    _starts: int = field(default=0, repr=False)  #: starts made again on a new pick (:meth:`_again`)

    @property
    def url(self) -> str:
        """The API's URL; read it after :meth:`wait_ready` (a picked port may have been picked again)."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> UpStack:
        """Start ``gamead up``, its output appended to :attr:`out`, in ``out``'s directory: forked by the fork
        server (:class:`ForkServer`) when it can be (~1.2 s of CPU of interpreter start and imports saved per
        start; and its own children, the API and workers, are forked by a zygote of its own: ``tests/up_zygote.py``,
        :data:`UP_CHILDREN_FORKED`), else a fresh process (whose children are fresh interpreters). Either
        way SIGHUP stops it (the default disposition, see :func:`_up_preexec`) and it dies with pytest."""
        self._from = self.out.stat().st_size if self.out.exists() else 0
        server = ForkServer.get() if _forkable(self.argv, self.env) else None
        if server is not None:
            self.popen = server.start(self.argv[3:], self.env, self.out, cwd=self.out.parent)
            record(self.popen.pid)
            return self
        with open(self.out, "ab") as sink:
            self.popen = subprocess.Popen(self.argv, env=self.env, stdout=sink, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL, cwd=self.out.parent,
                                          preexec_fn=_up_preexec(die_with_parent()))
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def output(self) -> str:
        return self.out.read_text(errors="replace") if self.out.exists() else ""

    def wait_ready(self, timeout: float = 240) -> str:
        """Wait for ``up``'s "Press Ctrl-C" line; ``timeout`` covers its API's start, which ``up`` waits on for
        up to ``API_START_CAP`` (180 s) while it makes progress (a loaded machine), plus nats-server's."""
        def ready() -> bool:
            lost = self._lost() if self._starts < PICKED_STARTS - 1 else None
            if lost is not None:  # another stack claimed (or a process took) a picked port first
                self._again(lost)
                return False
            if self.popen is not None and self.popen.poll() is not None:
                raise AssertionError(f"gamead up exited with {self.popen.returncode}:\n{self.output()[-3000:]}")
            return "Press Ctrl-C" in self._said()

        wait_for(ready, timeout=timeout, interval=0.1, what="gamead up to be ready")
        self.started()
        return self._said()

    def _said(self) -> str:
        """What this start printed (not an earlier start's)."""
        return self.output()[self._from:]

    def _lost(self) -> str | None:
        """Which port picked here this start says another process (or stack) took before ``up`` or its child bound
        it (:func:`port_said_lost`): ``--port`` (the API's), or the variable of :attr:`picked_env`; None if none."""
        said = self._said()
        picked = [("--port", self.port)] if self.picked else []
        picked += [(name, int(self.env[name])) for name in self.picked_env]
        return next((what for what, port in picked if port_said_lost(said, port)), None)

    def _again(self, lost: str) -> None:
        """Start again with a new pick for ``lost`` (:meth:`_lost`), up ended first if it still runs (a monitoring
        port it moved): the port picked was taken between :func:`free_port` and ``up``'s own claim or its child's
        bind (a parallel run saw another test's stack claim it, exit 5)."""
        if self.popen is not None and self.popen.poll() is None:
            self.stop()
        self._starts += 1
        if lost == "--port":
            old, self.port = self.port, free_port()
            self.argv = with_port(self.argv, old, self.port)
        else:
            self.env[lost] = str(free_port())
        self.start()

    def started(self) -> list[dict[str, object]]:
        """Every process this stack started so far (``{"name", "pid", "start"}``), from its PID file."""
        try:
            doc = json.loads((self.data_dir / "gamead-up.json").read_text())
        except (OSError, ValueError):
            return []
        if doc.get("pid") != self.pid:
            return []  # an earlier stack's file
        for entry in doc["started"]:
            self.seen.setdefault(int(entry["pid"]), entry.get("start"))
        return list(doc["started"])

    @property
    def nats_token(self) -> str:
        """The token its embedded nats-server requires (``nats.token`` of its ``config-in-force.yaml``, made by
        ``gamead up`` unless configured): a test connecting to that server directly presents it, as a child does."""
        import yaml

        return str(yaml.safe_load((self.data_dir / "config-in-force.yaml").read_text())["nats"]["token"])

    def pid_of(self, name: str) -> int:
        """The PID of child ``name`` (``nats-server``, ``api``, ``worker-1`` …), which must be running."""
        pid = self.running_pid(name)
        assert pid is not None, f"{name} not in {self.started()}"
        return pid

    def running_pid(self, name: str) -> int | None:
        """The PID of child ``name`` if it runs (the file lists it), else None (e.g. dead, awaiting restart)."""
        pids = [int(e["pid"]) for e in self.started() if e["name"] == name]
        return pids[-1] if pids else None

    def ours_alive(self) -> list[int]:
        """PIDs this stack started (and ``up`` itself) that still run: same PID *and* start time."""
        self.started()
        alive = [pid for pid, start in self.seen.items() if pid_alive(pid) and start_time(pid) == start]
        return alive + ([self.pid] if self.popen is not None and self.popen.poll() is None else [])

    def stop(self, timeout: float = 60) -> None:
        """Stop ``gamead up`` as a terminal's SIGTERM would (resumed first, if the test stopped it), waiting up to
        ``timeout`` s for its drain; then SIGKILL whatever it started that is still there, by PID."""
        if self.popen is not None and self.popen.poll() is None:
            os.kill(self.pid, signal.SIGCONT)
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        self.kill_everything()

    def kill_everything(self) -> None:
        """The cleanup of a failed test: SIGKILL ``up`` and every process it recorded, by PID."""
        for pid in self.ours_alive():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.popen is not None and self.popen.poll() is None:
            self.popen.wait(10)


def with_port(argv: list[str], old: int, new: int) -> list[str]:
    """``argv`` with its ``--port old`` made ``--port new``: a word of its own, or within the shell command of a
    ``bash -c`` (a printed restart command run verbatim). Raises ``AssertionError`` if it has no ``--port old``.
    Pure."""
    if "--port" in argv and argv[argv.index("--port") + 1] == str(old):
        at = argv.index("--port") + 1
        return [*argv[:at], str(new), *argv[at + 1:]]
    command, count = re.subn(rf"(?<!\S)--port {old}(?!\S)", f"--port {new}", argv[-1])
    assert count == 1, f"no --port {old} to pick again in {argv}"
    return [*argv[:-1], command]


def _up_preexec(dies_with_pytest: Callable[[], None] | None) -> Callable[[], None]:
    """``preexec_fn`` of a test's ``gamead up``: it dies with pytest, and SIGHUP stops it (the default
    disposition) even when the tests run under ``nohup``, which ``gamead up`` would respect (it leaves an ignored
    SIGHUP ignored)."""
    def preexec() -> None:
        if dies_with_pytest is not None:
            dies_with_pytest()
        signal.signal(signal.SIGHUP, signal.SIG_DFL)

    return preexec


def port_said_lost(said: str, port: int) -> bool:
    """True when ``gamead up``'s output ``said`` says ``port`` was taken by another process or reserved by another
    stack: its own refusal (``port P on H is taken``, ``port P is reserved by``), its API's (``port P is taken``),
    its moved monitoring port (``monitoring port P is taken``), nats-server's bind error (``H:P: bind: address
    already in use``) or its port answered by another process (``port P on H answers, but not from``). Pure."""
    return re.search(rf"\bport {port} (on \S+ )?is (taken|reserved)|:{port}: bind: address already in use|"
                     rf"\bport {port} on \S+ answers, but not from", " ".join(said.split())) is not None


def up_stack(tmp_path: Path, *args: str, port: int | None = None, data_dir: Path | None = None,
             name: str = "up", picked_env: tuple[str, ...] = (), kept: bool = False, **env: str) -> UpStack:
    """A ``gamead up`` (not yet started) on ``port`` (default: a free one, picked again if another process takes
    it first: read :attr:`UpStack.url` after :meth:`UpStack.wait_ready`) with its own data dir under ``tmp_path``.
    ``picked_env``: variables (``GAMEAD_EMBEDDED__NATS_PORT`` …) set to a free port picked here, and picked again
    the same way (read them from :attr:`UpStack.env` after :meth:`UpStack.wait_ready`). ``kept``: ``port`` is the
    one an earlier stack of the test had (its printed restart command names it), not one the test needs: nothing
    holds a port while no stack runs, so it is picked again as a free one is if another process took it (flake55:
    a restart on a kept port at load ~40 exited 5, "port 23250 is taken by another process")."""
    picked = port is None or kept
    port = port or free_port()
    data_dir = data_dir or tmp_path / f"{name}-data"
    argv = gamead_argv("up", "--port", str(port), "--data-dir", str(data_dir), *args)
    env.update({variable: str(free_port()) for variable in picked_env})
    return UpStack(data_dir, port, argv, clean_env(**env), tmp_path / f"{name}.out", picked=picked,
                   picked_env=picked_env)


# --- gamead doctor: the check every fault test ends with ----------------------------------------------------


def doctor_report(target: str, *, settle: float = 0.5, token: str | None = None,
                  **settings: object) -> dict[str, object]:
    """One ``gamead doctor`` report (the wire form of ``GET /v1/doctor``). ``target``: an API URL (asked over
    HTTP, with ``token`` if given), or a NATS URL (run in this process with default settings updated by
    ``settings``, e.g. ``worker={"max_attempts": 3}``: for tests whose API is gone)."""
    if target.startswith(("http://", "https://")):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        resp = httpx.get(f"{target}/v1/doctor", params={"settle": settle, "sample": 50}, headers=headers,
                         timeout=120)
        assert resp.status_code == 200, resp.text[:500]
        return dict(resp.json())

    import asyncio

    import nats

    from gamead_core.config import load_settings
    from gamead_core.doctor import diagnose

    async def run() -> dict[str, object]:
        nc = await nats.connect(target)
        try:
            found = await diagnose(nc, nc.jetstream(), load_settings(None, **settings), settle=settle)
            return found.report.wire(50)
        finally:
            await nc.close()

    return asyncio.run(run())


def assert_doctor_clean(target: str, *, timeout: float = 20.0, settle: float = 0.5, token: str | None = None,
                        **settings: object) -> dict[str, object]:
    """Assert that ``gamead doctor`` finds every invariant holding (ARCHITECTURE "Invariants"): no finding,
    everything read. Polls with a deadline (the system may still be settling what a test just did); fails with
    the last report's findings. ``target``, ``token`` and ``settings`` as in :func:`doctor_report`."""
    last: dict[str, object] = {}

    def clean() -> bool:
        nonlocal last
        try:
            last = doctor_report(target, settle=settle, token=token, **settings)
        except AssertionError as exc:  # no report (e.g. a 503): keep why, and ask again
            last = {"error": str(exc)[:1000]}
            return False
        return bool(last.get("ok"))

    try:
        wait_for(clean, timeout=timeout, interval=0.2, what="gamead doctor to find nothing")
    except AssertionError:
        if last.get("findings") is None:  # no report: the doctor itself failed (its error says why)
            raise AssertionError(f"gamead doctor gave no report: {json.dumps(last)[:3000]}") from None
        raise AssertionError(f"gamead doctor found problems: {json.dumps(last.get('findings'))[:3000]}; "
                             f"partial: {last.get('partial')}") from None
    return last
def _inbox(reply: str) -> str:
    """The inbox prefix of a nats-py reply subject (``_INBOX.<connection>.<n>`` → ``_INBOX.<connection>``)."""
    return reply.rsplit(".", 1)[0]


class SubjectTap:
    """A plain NATS subscription on ``subject``, run on a thread of its own: counts (and keeps) every message
    published there. For waiting on what a process *does* (its pull requests, its KV writes) instead of on
    time. Use as a context manager, or ``close()`` it."""

    def __init__(self, url: str, subject: str) -> None:
        import asyncio
        import threading

        self.subject = subject
        self.messages: list[bytes] = []
        self.subjects: list[str] = []  #: the subject of each message, in the same order
        #: the reply subject of each message ("" for none), in the same order: a request's names its sender's
        #: connection (nats-py's replies share one ``_INBOX.<connection>.`` prefix per connection)
        self.replies: list[str] = []
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run(url)), daemon=True)
        self._thread.start()
        if not self._ready.wait(10) or self._error is not None:
            raise AssertionError(f"cannot subscribe to {subject} on {url}: {self._error!r}")

    async def _run(self, url: str) -> None:
        import asyncio

        import nats

        from tests.nats_barrier import subscriptions_placed

        try:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            nc = await nats.connect(url)

            async def on_msg(msg) -> None:  # noqa: ANN001 - nats.aio.msg.Msg
                self.subjects.append(msg.subject)
                self.replies.append(msg.reply or "")
                self.messages.append(msg.data)

            await nc.subscribe(self.subject, cb=on_msg)
            await subscriptions_placed(nc)  # not nc.flush(): its PING can pass the SUB (tests/nats_barrier.py)
        except Exception as exc:  # noqa: BLE001 - reported by __init__
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        await self._stop.wait()
        await nc.drain()

    @property
    def count(self) -> int:
        return len(self.messages)

    def senders(self) -> set[str]:
        """The connections whose requests reached the tap so far: each reply subject's inbox prefix."""
        return {_inbox(reply) for reply in list(self.replies) if reply}

    def count_from(self, senders: set[str], *, exclude: bool = False) -> int:
        """Requests whose reply subject is under one of ``senders`` (inbox prefixes, :meth:`senders`), or with
        ``exclude``, those that are not."""
        return sum((_inbox(reply) in senders) != exclude for reply in list(self.replies))

    def close(self) -> None:
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def __enter__(self) -> SubjectTap:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class KvWatch(SubjectTap):
    """Every write of one ad's record (``ad_id=">"``: of every ad), decoded: KV puts are publishes on
    ``$KV.<bucket>.<key>``. Open it *before* the action it watches: an idle worker starts an ad within
    milliseconds of its 202, and a watch opened after that misses the first attempt's writes."""

    def __init__(self, url: str, ad_id: str) -> None:
        super().__init__(url, f"$KV.{names.ADS_BUCKET}.{ad_id}")

    @property
    def writes(self) -> list[dict]:
        return [json.loads(data) for data in list(self.messages) if data]

    @property
    def started(self) -> set[str]:
        """Ads whose record said they started: a ``processing`` mark, or an outcome with ``startedAt`` (a
        short analysis writes only its outcome, issue 14.2)."""
        return {w.get("id") for w in self.writes if w.get("status") == "processing" or w.get("startedAt")}

    def statuses(self) -> list[str]:
        return [w["status"] for w in self.writes]

    def of(self, ad_id: str) -> list[dict]:
        return [w for w in self.writes if w.get("id") == ad_id]


@contextlib.asynccontextmanager
async def fresh_intake(url: str) -> AsyncIterator[tuple[Any, Any, Any]]:
    """``(js, store, intake)`` on a connection of the test's own to the NATS at ``url``, gamead's topology
    ensured (default settings; publish timeout 5 s); the connection is closed after the block."""
    import nats

    from gamead_core.config import GameadSettings
    from gamead_core.intake import Intake
    from gamead_core.queue.topology import ensure_topology
    from gamead_core.store.ads import AdStore

    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        await ensure_topology(js, GameadSettings())
        store = await AdStore.open(nc, js)
        yield js, store, Intake(js, store, publish_timeout=5)
    finally:
        await nc.close()


@contextlib.contextmanager
def json_log_lines(role: str) -> Iterator[io.StringIO]:
    """gamead's JSON logging (INFO, ``role``) into a string buffer inside the block; the root logger's handlers
    and level as they were after it."""
    from gamead_core.config import LogSettings
    from gamead_core.logs import setup_logging

    out = io.StringIO()
    root = logging.getLogger()
    saved, level = list(root.handlers), root.level
    setup_logging(LogSettings(format="json", level="INFO"), role=role, stream=out)
    try:
        yield out
    finally:
        root.handlers[:] = saved
        root.setLevel(level)


def work_streams(url: str, token: str | None = None) -> dict[str, dict[str, Any]]:
    """Every work stream of the NATS at ``url``: name → its config (as JSON) and the messages it holds."""
    async def run() -> dict[str, dict[str, Any]]:
        nc = await nats.connect(url, token=token)
        try:
            infos = await nc.jetstream(timeout=5).streams_info()
            return {i.config.name: {"config": i.config.as_dict(), "messages": int(i.state.messages)}
                    for i in infos if names.partition_of_stream(i.config.name) is not None}
        finally:
            await nc.close()

    return asyncio.run(run())


async def until_ready(client: httpx.AsyncClient, timeout: float = 30.0) -> None:
    """Poll ``client``'s ``/readyz`` (an app in this process, through ``httpx.ASGITransport``) until 200: connected,
    topology made; fail naming its last answer after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while (await client.get("/readyz")).status_code != 200:
        assert loop.time() < deadline, (await client.get("/readyz")).text
        await asyncio.sleep(0.1)


def on_js(url: str, action: Callable[[Any], Any]) -> Any:
    """``action(js)`` run on a NATS connection of the test's own to ``url`` (opened and closed around it)."""

    async def go() -> Any:
        nc = await nats.connect(url)
        try:
            return await action(nc.jetstream())
        finally:
            await nc.close()

    return asyncio.run(go())


def reaper_lease_revision(url: str) -> int:
    """The reaper lease's revision in the leases bucket (0 while there is none): it moves at each renewal."""
    async def read(js: Any) -> int:
        try:
            return int((await (await js.key_value(names.LEASES_BUCKET)).get(names.REAPER_LEASE)).revision or 0)
        except Exception:  # noqa: BLE001 - not there yet
            return 0

    return int(on_js(url, read))


def reaper_rounds(url: str, rounds: int = 2, *, timeout: float = 30) -> None:
    """Wait until the reaper lease is held and renewed ``rounds`` times more (each renewal a reaper round that
    read the registry), e.g. so the reaper has seen an API alive before the test makes it silent."""
    held = wait_for(lambda: reaper_lease_revision(url), timeout=timeout, what="the reaper lease taken")
    wait_for(lambda: reaper_lease_revision(url) >= held + rounds, timeout=timeout, what=f"{rounds} reaper rounds")


_ANSI_SGR = re.compile(r"\x1b\[[0-9;]*m")


def one_error_line(result: subprocess.CompletedProcess[str], *fragments: str) -> str:
    """The CLI's one red line of ``result`` (its colours taken out): stderr is that one line, starting ``error: ``
    and holding each of ``fragments``; no traceback anywhere (house rule 3). Returns the line."""
    lines = _ANSI_SGR.sub("", result.stderr).strip().splitlines()
    assert len(lines) == 1, result.stderr[-2000:]
    assert lines[0].startswith("error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert "Traceback" not in result.stdout + result.stderr
    return lines[0]


async def queue_ad(store: Any, js: Any, title: str, priority: int = 3) -> tuple[Any, int]:
    """One ad queued as the API queues it: its ``queued`` record created in ``store`` (an ``AdStore``), then its
    work message published on ``js`` with the record's revision (``Gamead-Record-Revision``). Returns the record
    (``AdRecord``) and that revision."""
    from gamead_core.ad_ids import new_ad_id
    from gamead_core.models import AdRecord, AdStatus, utcnow

    record = AdRecord(id=new_ad_id(), status=AdStatus.QUEUED, priority=priority, submitted_at=utcnow(),
                      ad=AdSubmission.model_validate(ad(title)))
    return record, await queue_record(store, js, record)


async def queue_record(store: Any, js: Any, record: Any) -> int:
    """``record`` (an ``AdRecord``) queued as the API queues an ad: created in ``store`` (an ``AdStore``), then its
    work message published on ``js`` at its priority with the record's revision (``Gamead-Record-Revision``).
    Returns that revision."""
    from gamead_core.store.ads import encode

    revision = await store.create(record)
    await js.publish(names.level_subject(record.priority), encode(record), headers={
        names.HDR_MSG_ID: record.id, names.HDR_AD_ID: record.id, names.HDR_RECORD_REVISION: str(revision)})
    return revision


def _rss_kib(pid: int) -> int:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:  # ended meanwhile
        return 0
    found = re.search(r"^VmRSS:\s+(\d+) kB", text, re.MULTILINE)
    return int(found.group(1)) if found else 0


def gamead_peak_rss(cwd: Path, *args: str, limit_kib: int, give_up: float = 60.0,
                    **env: str) -> tuple[int, subprocess.CompletedProcess[str]]:
    """Run ``gamead *args`` (in ``cwd``, :func:`clean_env` plus ``env``), sampling its RSS from /proc every 20 ms
    until it ends, passes ``limit_kib`` or ``give_up`` seconds (then killed): (peak KiB, its result)."""
    proc = subprocess.Popen(gamead_argv(*args), env=clean_env(**env), cwd=cwd, text=True,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    peak = 0
    try:
        until = time.monotonic() + give_up
        while proc.poll() is None and time.monotonic() < until and peak <= limit_kib:
            peak = max(peak, _rss_kib(proc.pid))
            try:  # its exit, waited for a sampling period at a time
                proc.wait(0.02)
            except subprocess.TimeoutExpired:
                pass
    finally:
        if proc.poll() is None:
            proc.kill()
        out, err = proc.communicate(timeout=30)
    return peak, subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
