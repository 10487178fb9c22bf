"""``gamead up``'s own children, forked in the tests: a zygote beside each test's ``up`` (``tests/forkserver.py``).

A test's ``gamead up`` is forked by the fork server, but each child it starts (the API, every worker, every
restart) used to be a fresh interpreter: ``python -m gamead_cli serve`` spends ~1.5 s of CPU on its imports before
it runs a line of gamead, and a ``make test`` run starts ~100 of them. Here the ``up`` process, still single-threaded
and before it runs any gamead code, becomes a child subreaper (``PR_SET_CHILD_SUBREAPER``) and forks a *zygote*: a
copy of itself with the fork server's modules imported. ``subprocess.Popen`` in ``up`` becomes :class:`ZygotePopen`,
which hands a start of ``[sys.executable, "-m", "gamead_cli", …]`` to the zygote, with its stdin/stdout/stderr
(``SCM_RIGHTS``), environment, working directory and process group; anything else (nats-server) is started as before.

The zygote forks an intermediate, which forks the child and exits at once: the kernel hands the orphaned child to
the nearest subreaper, ``up``. So the child is ``up``'s own, as a ``Popen`` child is: ``up`` waits for it, reads its
exit status and signals it by PID (its ``Popen`` methods unchanged), it is recorded in ``gamead-up.json`` with its
start time, and ``GAMEAD_PARENT_PID`` names its parent. Only once ``up`` is its parent does the child ask the kernel
for the signal ``up``'s ``preexec_fn`` asks for (``die_with_parent``: SIGTERM when ``up`` dies; read from that
function's closure, so a change there is followed or, if its shape changes, the start falls back to ``exec``), then
take its process group (``process_group=0``), descriptors, directory and environment, and run ``gamead_cli``
exactly as ``python -m gamead_cli <args>`` would. The zygote dies with ``up`` (SIGKILL) and ignores the signals
sent to ``up``'s process group. Any failure to reach the zygote falls back to a plain ``exec``.

Only imported by the fork server (a script, run as ``python tests/forkserver.py``): no pytest, no test package.
The tests' ``ForkServer.start`` asks for it for ``up`` (``GAMEAD_TEST_FORKSERVER_UP=0``: fresh interpreters).
"""

from __future__ import annotations

import ctypes
import gc
import inspect
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Any

_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36
#: environment variables read when an interpreter starts: a child that sets one differently from ``up`` is exec'd
_STARTUP_ENV = ("PYTHON", "LC_", "LANG")
#: longest wait for the kernel to hand a new child to ``up`` (the intermediate exits at once)
_ADOPTION_DEADLINE = 10.0
_MAX_REQUEST = 1 << 20
#: the zygote's name (``/proc/<pid>/comm``): the one process under a test's ``up`` that ``up`` did not start
NAME = "up-zygote"


def _prctl(option: int, value: int) -> bool:
    """``prctl(option, value)``; False where unsupported. libc's ``prctl`` is the one :mod:`gamead_core.proc`
    resolved once, at its import in the fork server: resolving it in each child (``ctypes.util.find_library``
    runs ``ldconfig -p``) cost ~1.2 ms of CPU per call."""
    from gamead_core.proc import _prctl as prctl

    if prctl is None:
        return False
    return prctl(option, ctypes.c_ulong(value), ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0)) == 0


def split() -> dict[str, Any] | None:
    """In a freshly forked ``up`` (single-threaded, nothing of gamead run yet): fork the zygote. Returns None in
    ``up`` (its ``subprocess.Popen`` now :class:`ZygotePopen`, or unchanged if the kernel has no subreapers) and, in
    a child the zygote forked, that child's request (its setup done: run ``gamead_cli`` next)."""
    if threading.active_count() != 1 or not _prctl(_PR_SET_CHILD_SUBREAPER, 1):
        return None
    up = os.getpid()
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    gc.freeze()  # a child's collector never walks (nor copies) what exists now
    pid = os.fork()
    if pid == 0:
        ours.close()
        return _zygote(theirs, up)
    theirs.close()
    ZygotePopen.channel, ZygotePopen.lock, ZygotePopen.zygote = ours, threading.Lock(), pid
    subprocess.Popen = ZygotePopen  # type: ignore[misc]
    return None


def _zygote(sock: socket.socket, up: int) -> dict[str, Any]:
    """The zygote's loop: one child per request, until ``up`` closes the channel. Returns only in a child; in the
    zygote (and the intermediate) anything raised ends that process, never runs ``up``'s code."""
    zygote = os.getpid()
    try:
        ZygotePopen.name = _name(NAME)  # the marker tests.support.children_of leaves out; a child takes it back
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != up:
            os._exit(0)
        os.setpgid(0, 0)  # not in up's process group: a signal to that group is not ours
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        gc.disable()
        while True:
            request = _one(sock, up)
            if request is not None:
                return request
    except BaseException:
        if os.getpid() == zygote:
            os._exit(1)
        raise


def _name(name: str) -> str:
    """Set this process's name (``/proc/self/comm``, as ``ps`` shows it); returns the one it had."""
    with open("/proc/self/comm", "r+") as comm:
        was = comm.read().strip()
        comm.seek(0)
        comm.write(name)
    return was


def _one(sock: socket.socket, up: int) -> dict[str, Any] | None:
    """Serve one request: None in the zygote, the request in the child it forked (set up by :func:`_become`)."""
    data, fds, _, _ = socket.recv_fds(sock, _MAX_REQUEST, 3)
    if not data:
        os._exit(0)  # up is gone
    request = json.loads(data)
    read, write = os.pipe()
    middle = os.fork()
    if middle == 0:
        try:
            os.close(read)
            child = os.fork()
            if child == 0:
                os.close(write)
                sock.close()
                return _become(request, fds, up)
            os.write(write, str(child).encode())
        finally:
            if os.getppid() != up:  # the intermediate, never the child: it exits at once, the child goes to up
                os._exit(0)
    os.close(write)
    answer = os.read(read, 64)
    os.close(read)
    os.waitpid(middle, 0)  # once it is reaped, the child's parent is up
    for fd in fds:
        os.close(fd)
    sock.send(json.dumps({"pid": int(answer)} if answer else {"error": "no child"}).encode())
    return None


def _become(request: dict[str, Any], fds: list[int], up: int) -> dict[str, Any]:
    """In the child: what ``up``'s ``Popen`` would have set up before ``exec`` (see the module docstring)."""
    deadline = time.monotonic() + _ADOPTION_DEADLINE
    while os.getppid() != up:
        if time.monotonic() > deadline:
            os._exit(1)
        time.sleep(0.001)
    if request["deathsig"]:
        _prctl(_PR_SET_PDEATHSIG, request["deathsig"])
        if os.getppid() != up:  # up died between the adoption and prctl
            os._exit(1)
    _name(ZygotePopen.name)
    if request["pgid"] is not None:
        os.setpgid(0, request["pgid"])
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
    os.closerange(3, os.sysconf("SC_OPEN_MAX") if hasattr(os, "sysconf") else 1024)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    gc.enable()
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.argv = ["-m", *request["args"]]
    return request


def _deathsig(preexec_fn: Any) -> int | None:
    """The signal ``gamead_core.proc.die_with_parent``'s ``preexec_fn`` asks for (0: no ``preexec_fn``); None for
    any other function (then the start is an ``exec``)."""
    if preexec_fn is None:
        return 0
    code, cells = getattr(preexec_fn, "__code__", None), getattr(preexec_fn, "__closure__", None) or ()
    names = dict(zip(code.co_freevars, (c.cell_contents for c in cells))) if code is not None else {}
    if getattr(preexec_fn, "__qualname__", "") != "die_with_parent.<locals>.preexec" or "signum" not in names:
        return None
    return int(names["signum"].value)


class ZygotePopen(subprocess.Popen):  # type: ignore[type-arg]
    """``subprocess.Popen`` in a test's ``up``: a ``gamead_cli`` start is forked by the zygote, anything else is
    started as ``Popen`` always does."""

    channel: socket.socket | None = None
    name = ""  #: (in the zygote) the name of up's process, which each child takes back
    lock = threading.Lock()
    zygote = 0
    _signature = inspect.signature(subprocess.Popen._execute_child)

    def _execute_child(self, *args: Any, **kwargs: Any) -> None:
        a = self._signature.bind(self, *args, **kwargs).arguments
        request = self._request(a)
        if request is not None:
            fds = [a["p2cread"], a["c2pwrite"], a["errwrite"]]
            try:
                with self.lock:
                    assert self.channel is not None
                    socket.send_fds(self.channel, [json.dumps(request).encode()], fds)
                    answer = json.loads(self.channel.recv(4096) or b"{}")
            except (OSError, ValueError):
                answer = {}
            if "pid" in answer:
                self.pid, self._child_created = int(answer["pid"]), True
                self._close_pipe_fds(a["p2cread"], a["p2cwrite"], a["c2pread"], a["c2pwrite"], a["errread"],
                                     a["errwrite"])
                return
            type(self).channel = None  # the zygote is gone: exec from now on
        super()._execute_child(*args, **kwargs)

    def _request(self, a: dict[str, Any]) -> dict[str, Any] | None:
        """What the zygote needs to fork this start, or None if it must be an ``exec``."""
        argv, env = a["args"], a["env"]
        deathsig = _deathsig(a["preexec_fn"])
        plain = (self.channel is not None and isinstance(argv, list)
                 and argv[:3] == [sys.executable, "-m", "gamead_cli"] and a["executable"] is None and not a["shell"]
                 and a["close_fds"] and not a["pass_fds"] and env is not None and deathsig is not None
                 and not a["start_new_session"] and a["uid"] is None and a["gid"] is None and a["gids"] is None
                 and a["umask"] < 0 and -1 not in (a["p2cread"], a["c2pwrite"], a["errwrite"])
                 and -1 == a["p2cwrite"] == a["c2pread"] == a["errread"])
        if not plain:
            return None
        env = {os.fsdecode(k): os.fsdecode(v) for k, v in env.items()}
        startup = {k: v for k, v in env.items() if k.startswith(_STARTUP_ENV)}
        if startup != {k: v for k, v in os.environ.items() if k.startswith(_STARTUP_ENV)}:
            return None
        return {"args": [str(x) for x in argv[3:]], "env": env, "cwd": os.fsdecode(a["cwd"] or os.getcwd()),
                "deathsig": deathsig, "pgid": a["process_group"] if a["process_group"] >= 0 else None}
