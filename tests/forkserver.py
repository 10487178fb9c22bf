"""A fork server for the gamead processes the tests start: the same program, without its import time.

``python -m gamead_cli serve`` spends ~1.5 s of CPU importing FastAPI, uvicorn, pydantic and nats-py before it
runs a line of gamead, and the suite starts well over a hundred of them: on a 2-core machine that is the
largest share of ``make test``. So each pytest process starts this script once; it imports those modules,
then forks one child per request, and the child runs ``gamead_cli`` exactly as ``python -m gamead_cli <args>``
would (same ``__main__``, same ``sys.argv``, the caller's environment, working directory and log file, a
session of its own, the interpreter's shutdown but for its module teardown: ``tests/child_exit.py``). Every
gamead line still runs in a real process of its own, on real servers; only the interpreter start is shared.
``tests.support.Proc``, ``run_gamead`` and ``tests.forked_popen.GameadPopen`` (a command with pipes) use it for
``gamead`` commands; set ``GAMEAD_TEST_FORKSERVER=0`` to start every process with a fresh interpreter instead.

Protocol (JSON lines): requests on stdin ``{"id", "args", "env", "cwd", "log"}`` (optionally ``"err"``: a file of
its own for stderr, which otherwise goes to ``log`` with stdout; ``"zygote"``: a ``gamead up`` whose children are
forked too, ``tests/up_zygote.py``; ``"nofile"``: ``[soft, hard]``, its ``RLIMIT_NOFILE``, as ``prlimit --nofile``
sets it); or, on the socket whose descriptor follows ``--fds`` on the command line, one
datagram ``{"id", "args", "env", "cwd"}`` with three descriptors (``SCM_RIGHTS``) that become the child's stdin,
stdout and stderr, as ``Popen``'s pipes would (``tests/forked_popen.py``); answers on stdout
``{"id", "pid"}`` once a child is forked, ``{"exit": pid, "code": returncode, "cpu": seconds}`` when it has
ended (``-N`` for signal N, as :mod:`subprocess` says; the CPU time it used). The server reaps every child.
When its stdin closes (pytest ended, or died however it died: the kernel closes the pipe) it exits, and its
children get SIGTERM (``PR_SET_PDEATHSIG``).

Only run as a script (``python tests/forkserver.py``): it must not import pytest or the test package.
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import select
import signal
import socket
import sys
import threading
from typing import Any

#: what ``serve``, ``worker`` and the operator commands import before doing anything (import errors ignored)
PRELOAD = (
    "gamead_cli.main",
    "gamead_cli.root",
    "gamead_cli.commands.serve",
    "gamead_cli.commands.worker",
    "gamead_cli.commands.dlq",
    "gamead_cli.commands.ads",
    "gamead_cli.commands.submit",
    "gamead_cli.commands.scale",
    "gamead_cli.commands.workers",
    "gamead_core.api.app",
    "gamead_core.worker.runtime",
    "uvicorn.loops.uvloop",
    "uvicorn.protocols.http.httptools_impl",
    "uvicorn.protocols.http.h11_impl",
    "uvicorn.lifespan.on",
    "redis.asyncio",
    # what ``serve`` still imported after the fork, for uvicorn's Config.load (its websocket protocol, which
    # ``ws="auto"`` picks) and for Typer's command call: 23 modules, ~0.02 CPU-s of each of ~300 `serve` starts
    "uvicorn.protocols.websockets.auto",
    "typer._adapters",
    "typer._click.decorators",
    "fastapi.telemetry._runtime",
    "gamead_cli.flag_settings",  # options.py's check of a flag's value against its setting (leftout58), lazy there
    "up_zygote",  # this directory's (the script's): a test's `gamead up` forks its children with it
    "child_exit",  # this directory's too: how a child ends
)


#: the commands the server builds into click commands before it forks (``gamead_cli.command_table.load_command``
#: keeps each, as ``gamead_cli.root.app`` its root group, once per process), each option's value check (a pydantic
#: TypeAdapter Typer makes on first use and keeps) made too: ~10 ms of CPU of each child's start before
WARM = ("serve", "worker", "dlq", "ads", "submit", "scale", "workers")


def _warm() -> None:
    """Build the root group and the :data:`WARM` commands (what failed to build is built by the child itself)."""
    try:
        from gamead_cli.command_table import load_command
        from gamead_cli.root import app

        commands = [app.click_group(), *(load_command(name) for name in WARM)]
        while commands:
            command = commands.pop()
            commands.extend((getattr(command, "commands", None) or {}).values())
            for param in command.params:
                if hasattr(param, "get_runtime_param"):
                    param.get_runtime_param()
    except Exception:  # noqa: BLE001, S110 - as PRELOAD's imports: the child does it then
        pass


def _write(message: dict[str, Any]) -> None:
    os.write(1, json.dumps(message).encode() + b"\n")


def _fork(request: dict[str, Any], children: set[int], fds: list[int]) -> dict[str, Any] | None:
    """Fork the child of ``request``: None in the server (its copies of ``fds`` closed), the request in the child."""
    gc.freeze()  # what exists now is never traversed by a child's collector (see main)
    pid = os.fork()
    if pid == 0:
        signal.set_wakeup_fd(-1)  # the server's pipe (closed with the rest by _become); SIGCHLD reset there
        request["fds"] = fds
        return request
    for fd in fds:
        os.close(fd)
    children.add(pid)
    _write({"id": request["id"], "pid": pid})
    return None


def _child_ends() -> int:
    """A descriptor that becomes readable when a child ends: SIGCHLD's wakeup pipe (``signal.set_wakeup_fd``), so
    that the server sleeps until a request or an exit comes. It woke every 50 ms to look for ended children before:
    ~0.1 % of a core per idle server, one per pytest process for the whole run (testcpu60)."""
    wake, woken = os.pipe()
    os.set_blocking(wake, False)
    os.set_blocking(woken, False)
    signal.set_wakeup_fd(woken, warn_on_full_buffer=False)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # a handler, so the signal is delivered (and written) at all
    return wake


def _serve(channel: socket.socket | None) -> dict[str, Any]:
    """Fork a child per request; reap and report them. Returns (in a child only) the request to run."""
    buffer = b""
    children: set[int] = set()
    wake = _child_ends()
    sources = [0, wake] if channel is None else [0, wake, channel.fileno()]
    while True:
        readable, _, _ = select.select(sources, [], [])
        if wake in readable:
            try:  # drained; every ended child is reaped below
                while os.read(wake, 512):
                    pass
            except BlockingIOError:
                pass
        if channel is not None and channel.fileno() in readable:
            data, fds, _, _ = socket.recv_fds(channel, 1 << 20, 3)
            if data and (child := _fork(json.loads(data), children, fds)) is not None:
                return child
        if 0 in readable:
            chunk = os.read(0, 1 << 16)
            if not chunk:  # pytest is done with us
                os._exit(0)
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                if (child := _fork(json.loads(line), children, [])) is not None:
                    return child
        while children:
            try:
                pid, status, usage = os.wait4(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            children.discard(pid)
            _write({"exit": pid, "code": os.waitstatus_to_exitcode(status), "cpu": usage.ru_utime + usage.ru_stime})


def _die_with_server() -> Any:
    """A ``preexec_fn``-like call for the children (:func:`gamead_core.proc.die_with_parent`, made in the server
    before any fork): ``prctl(PR_SET_PDEATHSIG, SIGTERM)``, so the kernel sends the child SIGTERM when the fork
    server (its parent, which dies with pytest) is gone, and an exit at once if it is gone already; None where
    unsupported. Made once: resolving libc in each child (``ctypes.util.find_library`` runs ``ldconfig -p``) cost
    every forked child ~1.2 ms of CPU and 2.5-6 ms of its start."""
    from gamead_core.proc import die_with_parent

    return die_with_parent(signal.SIGTERM)


def _become(request: dict[str, Any], server: int, dies: Any) -> None:
    """In the forked child: what ``Popen(argv, env=…, cwd=…, stdout=log, stderr=STDOUT, stdin=DEVNULL,
    start_new_session=True, preexec_fn=die_with_parent())`` would have set up."""
    os.setsid()
    if dies is not None:
        dies()  # exits at once if the server died between fork and prctl
    if os.getppid() != server:  # the server died before the fork was done
        os._exit(1)
    if request["fds"]:  # a Popen's own stdin, stdout, stderr (tests/forked_popen.py)
        for target, fd in enumerate(request["fds"]):
            os.dup2(fd, target)
        os.closerange(3, os.sysconf("SC_OPEN_MAX"))  # close_fds=True, as Popen's child; the server's socket too
        for fd in request.get("closed") or ():  # a shell's `>&-`: closed, and its sys.std* None, as a fresh
            os.close(fd)                        # interpreter's start makes it for a descriptor it finds closed
            name = ("stdin", "stdout", "stderr")[fd]
            setattr(sys, name, None)
            setattr(sys, f"__{name}__", None)
        if request.get("ctty"):  # Popen(preexec_fn=takes_the_terminal): its stdin's pty becomes its controlling
            import fcntl          # terminal, as under `script` or sshd (closing the pty's master sends it SIGHUP)
            import termios

            fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    else:
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        err = os.open(request["err"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644) if request.get("err") else log
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(log, 1)
        os.dup2(err, 2)
        os.close(log)
        if err != log:
            os.close(err)
        os.close(devnull)
        os.closerange(3, os.sysconf("SC_OPEN_MAX"))  # the server's socket
    if request.get("nofile"):  # `prlimit --nofile=SOFT:HARD gamead …` (tests.support.Proc): set as prlimit sets it
        import resource

        resource.setrlimit(resource.RLIMIT_NOFILE, tuple(request["nofile"]))
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    if os.environ.get("PYTHONFAULTHANDLER"):  # what a fresh interpreter does at its start
        import faulthandler

        faulthandler.enable()
    gc.enable()  # off in the server only (see main); the child collects its own garbage as usual
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.argv = ["-m", *request["args"]]  # runpy puts the module's path in argv[0], as `python -m` does


def main() -> None:
    # The collector is off in the server and the preloaded objects are frozen before each fork (the recipe of
    # the `gc.freeze` documentation): a child's collections, and above all its collection at interpreter
    # shutdown, otherwise traverse every object it inherited, ~0.5 s of CPU per child here (0.1 s frozen;
    # 490 children per `make test`), and write to those pages, which the kernel then copies.
    gc.disable()
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001, S112 - a module we cannot preload is imported by the child itself
            continue
    _warm()
    if threading.active_count() != 1:  # a fork would copy a thread's locks, not the thread
        _write({"error": f"importing started threads: {threading.enumerate()}"})
        sys.exit(3)
    server = os.getpid()
    full_exit = os.environ.get("GAMEAD_TEST_FORKSERVER") == "full-exit"  # (tests/child_exit.py)
    channel = socket.socket(fileno=int(sys.argv[2])) if sys.argv[1:2] == ["--fds"] else None
    dies = _die_with_server()
    _write({"ready": server})
    request = _serve(channel)
    _become(request, server, dies)
    if request.get("zygote"):  # a test's `gamead up`: its own children forked too (tests/up_zygote.py)
        import up_zygote

        up_zygote.split()  # returns in up, and in each child the zygote forks for it (set up as up's Popen would)
    import child_exit

    child_exit.run(full_exit)  # runpy.run_module("gamead_cli", run_name="__main__"), its end without the module teardown


if __name__ == "__main__":
    main()
