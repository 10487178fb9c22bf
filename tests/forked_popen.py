"""``subprocess.Popen`` and ``subprocess.run`` of a ``gamead`` command, forked by the fork server.

A test that reads a command's stdout as it comes, writes its stdin, sends it a signal or runs it under a shell's
redirections needs the command's real descriptors, which ``tests.support.run_gamead`` (output to files) does not
give. Each such command used to be a fresh interpreter: ``python -m gamead_cli submit …`` spends 0.4-1 s of CPU on
its imports before it runs a line of gamead. :class:`GameadPopen` is ``subprocess.Popen`` with one change: when the
start is one the fork server can make exactly (below), the child is forked by the fork server
(``tests/forkserver.py``) with the descriptors ``Popen`` made for it (``SCM_RIGHTS``) as its stdin, stdout and
stderr, and its exit status comes from the server, which reaps it. Everything else of ``Popen`` is unchanged: its
pipes, text mode, ``communicate``, timeouts, ``send_signal``/``kill`` by PID, ``with`` blocks.

Forked only when nothing of the start needs a fresh process: ``[sys.executable, "-m", "gamead_cli", …]`` (str),
no shell, no ``executable``, ``close_fds``, no ``pass_fds``, no user/group/umask/process group, no
``preexec_fn`` but :func:`tests.support.sigint_reaches_it` (a forked child has Python's Ctrl-C handler),
:func:`takes_the_terminal` (the fork server's child does the same: suite49, a ``gamead top`` on a pty it controls
had been a fresh interpreter, ~1.5 CPU-s of imports) or the
closing of ``closed=`` descriptors (a shell's ``>&-``: the fork server closes them in the child), and the
same interpreter start-up variables (``PYTHON*``, ``LC_*``, ``LANG``) as pytest's. Otherwise, and with
``GAMEAD_TEST_FORKSERVER=0``, it is a plain ``Popen``. The child is in a session of its own (the server's
children all are), and dies with pytest (``PR_SET_PDEATHSIG`` via the server; ``tests.dies_with_pytest`` tells
the undertaker its PID, as for any ``Popen``).
"""

from __future__ import annotations

import inspect
import os
import subprocess
from typing import Any

from tests.support import ForkServer, _forkable, sigint_reaches_it


def takes_the_terminal() -> None:
    """``preexec_fn`` of a start with ``start_new_session=True`` and a pty on its stdin: that pty becomes the
    controlling terminal of the child's new session, as under ``script`` or sshd (closing the pty's master then
    sends it SIGHUP). Forked, the fork server's child does the same (``ctty``)."""
    import fcntl
    import termios

    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class _Closes:
    """The ``preexec_fn`` of a start whose descriptors ``fds`` (0-2) are closed, as a shell's ``>&-``, ``2>&-``,
    ``<&-`` leave them (a plain ``Popen`` calls it after setting up stdin, stdout and stderr; a fresh interpreter
    then makes that ``sys.std*`` None). The fork server does the same in a forked child."""

    def __init__(self, fds: tuple[int, ...]) -> None:
        self.fds = fds

    def __call__(self) -> None:
        for fd in self.fds:
            os.close(fd)


class GameadPopen(subprocess.Popen):  # type: ignore[type-arg]
    """``subprocess.Popen(argv, …)``, forked by the fork server when it can be (see the module docstring).
    ``closed=(1,)`` (or 0, 2): that descriptor closed in the child, as by a shell's ``>&-`` (``<&-``, ``2>&-``)
    before it runs the command (its ``stdin``/``stdout``/``stderr`` argument then only a placeholder)."""

    _server: ForkServer | None = None
    _request = 0  #: the fork server's number for this start (its exit is known by it)
    _signature = inspect.signature(subprocess.Popen._execute_child)

    def __init__(self, *args: Any, closed: tuple[int, ...] = (), **kwargs: Any) -> None:
        if closed:
            assert kwargs.get("preexec_fn") is None, "closed= is a preexec_fn of its own"
            kwargs["preexec_fn"] = _Closes(closed)
        # the test's own preexec_fn: Popen.__init__ chains tests.dies_with_pytest's before it (the forked child
        # dies with the fork server, which dies with pytest, and the undertaker is told its PID all the same)
        self._given_preexec = kwargs.get("preexec_fn")
        super().__init__(*args, **kwargs)

    def _execute_child(self, *args: Any, **kwargs: Any) -> None:
        a = self._signature.bind(self, *args, **kwargs).arguments
        server = self._forker(a)
        if server is None:
            super()._execute_child(*args, **kwargs)
            return
        env = {os.fsdecode(k): os.fsdecode(v) for k, v in a["env"].items()} if a["env"] is not None \
            else dict(os.environ)
        # -1: inherited from pytest, as a plain Popen's child inherits it
        fds = [fd if fd != -1 else inherited for fd, inherited in zip((a["p2cread"], a["c2pwrite"], a["errwrite"]),
                                                                       (0, 1, 2))]
        try:
            closed = self._given_preexec.fds if isinstance(self._given_preexec, _Closes) else ()
            child = server.start([str(x) for x in a["args"][3:]], env, None,
                                 cwd=os.fsdecode(a["cwd"]) if a["cwd"] is not None else None, fds=fds, closed=closed,
                                 ctty=self._given_preexec is takes_the_terminal)
        finally:
            self._close_pipe_fds(a["p2cread"], a["p2cwrite"], a["c2pread"], a["c2pwrite"], a["errread"],
                                 a["errwrite"])
        self.pid, self._child_created, self._server, self._request = child.pid, True, server, child.request

    def _forker(self, a: dict[str, Any]) -> ForkServer | None:
        """The fork server if this start can be forked exactly, else None."""
        argv = a["args"]
        if not (isinstance(argv, list) and all(isinstance(x, str) for x in argv) and a["executable"] is None
                and not a["shell"] and a["close_fds"] and not a["pass_fds"]
                and (self._given_preexec in (None, sigint_reaches_it, takes_the_terminal)
                     or isinstance(self._given_preexec, _Closes))
                and a["uid"] is None and a["gid"] is None
                and a["gids"] is None and a["umask"] < 0
                and a["process_group"] in (None, -1)):
            return None
        env = {os.fsdecode(k): os.fsdecode(v) for k, v in a["env"].items()} if a["env"] is not None \
            else dict(os.environ)
        return ForkServer.get() if _forkable(argv, env) else None

    def _internal_poll(self, *args: Any, **kwargs: Any) -> int | None:
        if self._server is None:
            return super()._internal_poll(*args, **kwargs)
        if self.returncode is None:
            self.returncode = self._server.exit_code(self._request)
        return self.returncode

    def _wait(self, timeout: float | None) -> int:
        if self._server is None:
            return super()._wait(timeout)
        if self.returncode is None:
            code = self._server.wait_exit(self._request, timeout)
            if code is None:
                raise subprocess.TimeoutExpired(self.args, timeout or 0)
            self.returncode = code
        return self.returncode


def gamead_run(argv: list[str], *, input: str | bytes | None = None, timeout: float | None = None,
               check: bool = False, **kwargs: Any) -> subprocess.CompletedProcess[Any]:
    """``subprocess.run(argv, …)`` with :class:`GameadPopen`: the same arguments (``capture_output`` too), the
    same ``CompletedProcess``, ``TimeoutExpired`` (the process killed) and ``CalledProcessError``."""
    if kwargs.pop("capture_output", False):
        kwargs["stdout"] = kwargs["stderr"] = subprocess.PIPE
    if input is not None:
        kwargs["stdin"] = subprocess.PIPE
    with GameadPopen(argv, **kwargs) as process:
        try:
            stdout, stderr = process.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            process.kill()
            exc.stdout, exc.stderr = process.communicate()
            raise
        except BaseException:
            process.kill()
            raise
        code = process.poll()
        if check and code:
            raise subprocess.CalledProcessError(code, process.args, output=stdout, stderr=stderr)
    return subprocess.CompletedProcess(process.args, code if code is not None else -1, stdout, stderr)


class SupervisedPopen(GameadPopen):
    """``subprocess.Popen`` as :class:`gamead_core.supervisor.Supervisor` calls it, in a test that runs a
    ``Supervisor`` of its own (:func:`fork_supervised`): a ``gamead`` child is forked by the fork server, not a
    fresh interpreter (~1 CPU-s of imports; a restart after a crash took 20 s and more at load, suite46). What the
    supervisor asks of its start is kept: the child is in a process group of its own (the server's children each
    have a session of their own), dies with its parent (the server, which dies with pytest), and its parent watch
    (``GAMEAD_PARENT_PID``, :func:`gamead_core.proc.watch_parent`) names its parent: the server. Any other start
    (a sleeper, another interpreter's variables) is the supervisor's own ``Popen``."""

    def __init__(self, argv: Any, *, env: dict[str, str] | None = None, process_group: int | None = None,
                 preexec_fn: Any = None, **kwargs: Any) -> None:
        from gamead_core.proc import PARENT_PID_ENV

        server = ForkServer.get() if isinstance(argv, list) and env is not None and _forkable(argv, env) else None
        if server is None or env is None:
            super().__init__(argv, env=env, process_group=process_group, preexec_fn=preexec_fn, **kwargs)
            return
        super().__init__(argv, env={**env, PARENT_PID_ENV: str(server.popen.pid)}, **kwargs)
        assert self._server is not None, f"{argv} was not forked"


def fork_supervised(monkeypatch: Any) -> None:
    """Make the ``gamead`` children of every :class:`gamead_core.supervisor.Supervisor` of this test forked
    (:class:`SupervisedPopen`) for the rest of the test (``monkeypatch``: pytest's fixture)."""
    from types import SimpleNamespace

    from gamead_core import supervisor

    monkeypatch.setattr(supervisor, "subprocess", SimpleNamespace(
        Popen=SupervisedPopen, STDOUT=subprocess.STDOUT, DEVNULL=subprocess.DEVNULL,
        TimeoutExpired=subprocess.TimeoutExpired))


__all__ = ["GameadPopen", "SupervisedPopen", "fork_supervised", "gamead_run"]


def reader_gone(*args: str) -> subprocess.CompletedProcess[str]:
    """``gamead args`` (:func:`gamead_run`, a clean environment) whose stdout is a pipe whose reader has already gone
    (``| head -1`` once ``head`` exited); its stderr captured."""
    from tests.support import clean_env, gamead_argv

    read, write = os.pipe()
    os.close(read)
    try:
        return gamead_run(gamead_argv(*args), env=clean_env(), stdout=write, stderr=subprocess.PIPE,
                          stdin=subprocess.DEVNULL, text=True, timeout=60)
    finally:
        os.close(write)
