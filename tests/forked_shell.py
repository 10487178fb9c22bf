"""A ``gamead`` for a shell's PATH whose every run is forked by the fork server: a script's commands as written.

A test that runs a user's lines verbatim (the README's blocks, ``gamead up``'s hints) runs them in ``bash``, which
starts the venv's ``gamead`` console script: a fresh interpreter that spends ~0.5 CPU-s on its start and imports
before it runs a line of gamead (the README's CLI tour: 10 commands, 6.5 of its client side's 6.7 CPU-s). Beside
the suite at load 40 that alone took past 180 s (load58A, the third session in a row). Put :func:`shell_bin`'s
directory first on the script's PATH and its ``gamead`` is a small script (``python -I -S``: ~0.02 CPU-s) that
hands its arguments, environment, working directory and its own stdin, stdout and stderr (``SCM_RIGHTS``) to this
pytest process, which has the fork server (``tests/forkserver.py``) fork ``gamead <args>`` with them, exactly as
:class:`tests.forked_popen.GameadPopen` does; the script exits with the child's code (``-N``: killed by signal N,
as the child was), and passes on SIGINT, SIGTERM and SIGHUP to it. The line the shell runs is unchanged; only the
interpreter start is shared. With the fork server off (``GAMEAD_TEST_FORKSERVER=0``), an environment read at
interpreter start that differs from pytest's, or this pytest process gone, the script runs the venv's ``gamead``
itself (``exec``), as the PATH alone would."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from tests.support import ForkServer, _forkable

#: the venv's own ``gamead`` (what the PATH finds without :func:`shell_bin`)
VENV_GAMEAD = Path(sys.executable).parent / "gamead"

_SCRIPT = """#!{python} -IS
import json, os, signal, socket, sys
real = {gamead!r}
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
try:
    s.connect({path!r})
    socket.send_fds(s, [json.dumps({{"args": sys.argv[1:], "env": dict(os.environ), "cwd": os.getcwd()}}).encode()],
                    [0, 1, 2])
    said = json.loads(s.recv(4096) or b"{{}}")
except OSError:
    said = {{}}
if "pid" not in said:  # not forked (fork server off, an interpreter start of its own, or pytest gone)
    os.execv(real, [real, *sys.argv[1:]])
for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
    signal.signal(sig, lambda n, _: os.kill(said["pid"], n))
code = json.loads(s.recv(4096) or b'{{"code": 1}}')["code"]
if code < 0:
    signal.signal(-code, signal.SIG_DFL)
    os.kill(os.getpid(), -code)
sys.exit(code)
"""


class _Relay:
    """This pytest process's listener for the ``gamead`` scripts (one thread per run) and their directory."""

    def __init__(self) -> None:
        self.bin = Path(tempfile.mkdtemp(prefix="gamead-shell-"))
        path = str(self.bin / "relay.sock")
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.listener.bind(path)
        self.listener.listen(64)
        script = self.bin / "gamead"
        script.write_text(_SCRIPT.format(python=sys.executable, gamead=str(VENV_GAMEAD), path=path), encoding="utf-8")
        script.chmod(0o755)
        threading.Thread(target=self._accept, name="forked-shell-relay", daemon=True).start()

    def _accept(self) -> None:
        while True:
            conn, _ = self.listener.accept()
            threading.Thread(target=self._run, args=(conn,), name="forked-shell-run", daemon=True).start()

    @staticmethod
    def _run(conn: socket.socket) -> None:
        """One run: fork it with the script's descriptors, say its PID, then its exit code; the script gone before
        the child ended (killed), the child is killed too."""
        with conn:
            data, fds, _, _ = socket.recv_fds(conn, 1 << 20, 3)
            try:
                request = json.loads(data)
                args, env = [str(a) for a in request["args"]], {str(k): str(v) for k, v in request["env"].items()}
                server = ForkServer.get() if _forkable([sys.executable, "-m", "gamead_cli", *args], env) else None
                if server is None or len(fds) != 3:
                    conn.send(b"{}")
                    return
                child = server.start(args, env, None, cwd=request["cwd"], fds=fds)
            finally:
                for fd in fds:
                    os.close(fd)
            conn.send(json.dumps({"pid": child.pid}).encode())
            while (code := child.returncode) is None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    child.wait(0.5)
                if child.returncode is None and _gone(conn):
                    child.kill()
            with contextlib.suppress(OSError):
                conn.send(json.dumps({"code": code}).encode())


def _gone(conn: socket.socket) -> bool:
    """The script at the other end of ``conn`` has ended (its end closed)."""
    try:
        return conn.recv(1, socket.MSG_DONTWAIT | socket.MSG_PEEK) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


_relay: _Relay | None = None
_lock = threading.Lock()


def shell_bin() -> Path:
    """The directory of the forking ``gamead`` (made, and its listener started, on first use in this process):
    put it first on a shell's PATH. Its scripts run the venv's ``gamead`` when they cannot be forked."""
    global _relay
    with _lock:
        if _relay is None:
            _relay = _Relay()
        return _relay.bin


def remove() -> None:
    """Remove the directory and close the listener (at the end of the session); later scripts exec the venv's."""
    global _relay
    with _lock:
        relay, _relay = _relay, None
    if relay is not None:
        relay.listener.close()
        shutil.rmtree(relay.bin, ignore_errors=True)


def on_path(env: dict[str, str]) -> dict[str, str]:
    """``env`` with :func:`shell_bin` first on its PATH: a shell run with it forks each ``gamead`` it starts. For
    scripts run to their end, not a terminal's (a forked child has a session of its own, not the terminal's)."""
    return {**env, "PATH": f"{shell_bin()}{os.pathsep}{env.get('PATH', '')}"}
