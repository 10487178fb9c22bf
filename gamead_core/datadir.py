"""One ``gamead up`` per data directory: an ``fcntl.flock`` lock, and a record of the processes it started.

``<data_dir>/gamead-up.lock`` is locked (``LOCK_EX | LOCK_NB``) for the life of ``gamead up`` and holds its
PID. The kernel drops a ``flock`` when its holder dies, however it dies, so a lock left by a killed stack is
never stale: the next ``gamead up`` simply gets it. A second ``gamead up`` on a locked directory is refused
at once, naming the directory and the holder's PID.

``<data_dir>/gamead-up.json`` lists the processes of the stack that run now (name, PID, start time) under
``"started"``: rewritten (a temporary file renamed over it, so a reader never sees half of one) whenever the
supervisor starts one, finds one dead or stops one (a restart replaces the dead PID; a worker stopped by a
scale-down leaves once it has ended). Tests and operators read PIDs from it. At the next start, a recorded process
that still runs with the same PID *and* start time (so not a reused PID) is a stray from a stack that died
without its children (possible where the kernel cannot signal them): it is stopped and reported. It also holds
``up``'s own PID and start time (``pid``, ``pidStart``) and its API's URL (``apiUrl``): :func:`running_stack` reads
them, so that a CLI verb run where a stack runs talks to that stack (the rule: README, "Which API a command talks
to"); a file whose ``up`` is gone (PID dead, or reused by another process) is stale: a verb still talks to its
``apiUrl`` (:func:`recorded_stack`), never to another stack on the default port. A child refused (exit 5) after the
stack started, retried with back-off, is listed under ``"refused"`` (name, tries in a row, since, last, its reason)
until it serves again (review28 L2): it is not up, though its retries come and go in ``"started"``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import stat
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from gamead_core.errors import ConfigError
from gamead_core.proc import alive, start_time
from gamead_core.signal_hold import held
from gamead_core.worker.backoff import backoff_ceiling

LOCK_FILE = "gamead-up.lock"
STATE_FILE = "gamead-up.json"
RETRY_BASE = 0.2  #: seconds before the first retry of a failed rewrite of the state file (then doubling)
RETRY_CAP = 5.0  #: seconds between two retries at most
#: the ``GAMEAD_*`` variables ``gamead up`` starts its children with (``gamead config show --stack``)
STACK_ENV_FILE = "stack-env.json"
#: the largest gamead-up.json read (bytes): a stack of hundreds of workers writes a few tens of KiB
MAX_STATE_BYTES = 1024 * 1024


class DataDirBusy(ConfigError):
    """Another ``gamead up`` holds the data directory: exit 5, as a port another stack holds."""

    code = "data_dir_busy"


@dataclass
class DataDir:
    """The data directory of one ``gamead up``: its lock and the record of what it started."""

    path: Path
    _lock: IO[str] | None = field(default=None, init=False, repr=False)
    _live: dict[int, dict[str, Any]] = field(default_factory=dict, init=False, repr=False)  # pid → entry
    #: record/forget come from the event loop's thread and from a scale-down's draining thread; reentrant, for
    #: a signal handler reading :meth:`live` while its own thread writes
    _guard: threading.RLock = field(default_factory=threading.RLock, init=False, repr=False)
    _api_url: str | None = field(default=None, init=False, repr=False)
    _refused: dict[str, dict[str, Any]] = field(default_factory=dict, init=False, repr=False)  # name → entry
    #: this process (``up``): its PID and start time, read once, written with every rewrite
    _me: dict[str, Any] = field(default_factory=lambda: {"pid": os.getpid(), "pidStart": start_time(os.getpid())},
                                init=False, repr=False)
    #: rewrites of the state file that failed in a row (0: it says what runs); the next try is at ``_retry_at``
    #: (``time.monotonic()``), after :data:`RETRY_BASE` · 2^(n−1) s, at most :data:`RETRY_CAP` s
    _failed: int = field(default=0, init=False, repr=False)
    _retry_at: float = field(default=0.0, init=False, repr=False)
    #: a rewrite succeeded after failures and :meth:`retry_write` has not said so yet
    _recovered: bool = field(default=False, init=False, repr=False)
    #: the outermost directory :meth:`lock` created (None: the data dir existed), and whether a process was started
    _created: Path | None = field(default=None, init=False, repr=False)
    _started: bool = field(default=False, init=False, repr=False)

    @property
    def state_file(self) -> Path:
        return self.path / STATE_FILE

    def lock(self) -> None:
        """Take the lock or raise :class:`DataDirBusy` naming the holder's PID. Never waits. Raises
        :class:`ConfigError` (exit 5), from :func:`data_dir_unusable`, when the directory cannot be created or
        written (a file, a part of its path a file, no permission, immutable, a read-only file system).
        Whole or undone: SIGINT, SIGTERM and SIGHUP are held back while it runs (:mod:`gamead_core.signal_hold`);
        one that came is acted on after the lock is dropped again and the directories it made removed (left39b:
        a SIGTERM between the lock file's creation and its ``flock`` left the new data dir behind, its lock file
        naming no holder)."""
        failure: BaseException | None = None
        with held() as hold:
            try:
                self._take()
            except BaseException as exc:  # noqa: BLE001 - raised below, after a signal that came is acted on
                failure = exc
            else:
                if hold.came:
                    self.unlock()
        hold.deliver()  # the handlers are back: a Ctrl-C raises here, a default action ends the process
        if failure is not None:
            raise failure

    def _take(self) -> None:
        """:meth:`lock`'s work, signals held."""
        missing = [p for p in (self.path.absolute(), *self.path.absolute().parents) if not p.exists()]
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            self._created = missing[-1] if missing else None
            fh = open(self.path / LOCK_FILE, "a+", encoding="utf-8")  # noqa: SIM115 - held for the stack's life
        except OSError as exc:
            raise data_dir_unusable(self.path, exc) from None
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "unknown"
            fh.close()
            raise DataDirBusy(
                f"data dir {self.path.resolve()} is in use by another `gamead up` (pid {holder}): stop it first, "
                "or give this one its own --data-dir"
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"{os.getpid()}\n")
        fh.flush()
        self._lock = fh

    def make_dir(self, name: str) -> Path:
        """The directory ``name`` of the data dir (``logs``), created if missing. Raises :class:`ConfigError`
        (exit 5, :func:`data_dir_unusable`) when it cannot be (a file there, no permission)."""
        path = self.path / name
        try:
            path.mkdir(parents=True, exist_ok=True)
            if not os.access(path, os.W_OK | os.X_OK):
                raise PermissionError(13, "Permission denied")
        except OSError as exc:
            raise data_dir_unusable(path, exc, self.path) from None
        return path

    def unlock(self) -> None:
        """Drop the lock. A data dir :meth:`lock` created and no process was started in (a start refused at once,
        e.g. its port taken: attack26 F9) is removed, with the parents it created; one that existed never is."""
        fh, self._lock = self._lock, None
        if fh is not None:
            if self._created is not None and not self._started:  # removed while locked: a stack starting meanwhile
                shutil.rmtree(self._created, ignore_errors=True)  # is refused, or makes a new dir after this
            fh.close()  # closing the file drops the flock

    # --- the record of started processes -----------------------------------------------------------------

    def record(self, name: str, pid: int) -> None:
        """Add a process just started (``pid``) as ``name``; rewrites the file."""
        with self._guard:
            self._started = True
            self._live[pid] = {"name": name, "pid": pid, "start": start_time(pid)}
            self._write()

    def forget(self, pid: int) -> None:
        """Drop a process that has ended (found dead, or stopped); rewrites the file. Unknown PIDs: no-op."""
        with self._guard:
            if self._live.pop(pid, None) is not None:
                self._write()

    def serve_api(self, url: str) -> None:
        """The URL of this stack's API (``http://127.0.0.1:8080``): in the state file from its next rewrite (the
        next process started), so a start refused before any process leaves no file."""
        with self._guard:
            self._api_url = url

    def refused(self, name: str, tries: int, reason: str) -> None:
        """Child ``name`` was refused (exit 5) ``tries`` times in a row since it last served, the last time for
        ``reason``: listed under ``"refused"`` (``{"name", "tries", "since", "last", "reason"}``, times ISO 8601
        UTC) until :meth:`serving`; rewrites the file (``OSError`` raised, retried as for :meth:`record`)."""
        now = datetime.now(UTC).isoformat(timespec="seconds")
        with self._guard:
            since = self._refused.get(name, {}).get("since", now)
            self._refused[name] = {"name": name, "tries": tries, "since": since, "last": now, "reason": reason}
            self._write()

    def serving(self, name: str) -> None:
        """Child ``name`` serves again: no longer listed as refused. Not listed: no-op."""
        with self._guard:
            if self._refused.pop(name, None) is not None:
                self._write()

    def live(self) -> list[dict[str, Any]]:
        """The processes of this stack that run now: ``[{"name", "pid", "start"}, …]``, oldest first."""
        with self._guard:
            return list(self._live.values())

    @property
    def retry_at(self) -> float | None:
        """When (``time.monotonic()``) :meth:`retry_write` rewrites the failed state file; None: none failed."""
        return self._retry_at if self._failed else None

    def retry_write(self, now: float | None = None) -> bool:
        """Rewrite the state file if its last rewrite failed (a full disk; it may name a dead process's PID) and
        its back-off has passed (``now``: ``time.monotonic()``); ``gamead up`` calls it at every supervisor poll.
        Returns True once the file is true again after a failed rewrite — made so by this call, or by a
        :meth:`record`/:meth:`forget` since (say it once) — else False. Never raises: a failure is counted and tried
        again later (0.2 s, doubling up to 5 s)."""
        with self._guard:
            if self._failed and (time.monotonic() if now is None else now) >= self._retry_at:
                with contextlib.suppress(OSError):
                    self._write()
            said, self._recovered = self._recovered, False
            return said

    def _write(self) -> None:
        """Write the state file; on ``OSError`` (raised) it is marked to be written again (:meth:`retry_write`)."""
        doc = {**self._me, "apiUrl": self._api_url, "started": list(self._live.values()),
               "refused": list(self._refused.values())}
        tmp = self.state_file.with_suffix(".tmp")
        try:
            tmp.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
            os.replace(tmp, self.state_file)  # atomic: a reader sees the old file or the new one, whole
        except OSError:
            with contextlib.suppress(OSError):  # never a half-written .tmp left beside it (attack56 F3)
                tmp.unlink(missing_ok=True)
            self._failed += 1
            self._recovered = False  # stale again: nothing to say until a rewrite succeeds
            self._retry_at = time.monotonic() + backoff_ceiling(self._failed, base=RETRY_BASE, cap=RETRY_CAP)
            raise
        self._recovered = self._recovered or self._failed > 0  # the first success after failures: said once
        self._failed = 0

    def strays(self) -> list[dict[str, Any]]:
        """Processes recorded by an earlier stack on this directory that still run (same PID and start). A file of
        another shape (not an object, ``started`` not a list: review42 F2, ``{"started": 5}`` raised) has none."""
        doc = read_state(self.path)
        started = doc.get("started") if isinstance(doc, dict) else None
        entries = [e for e in started if isinstance(e, dict)] if isinstance(started, list) else []
        out = []
        for entry in entries:
            pid, started = entry.get("pid"), entry.get("start")
            if isinstance(pid, int) and pid != os.getpid() and alive(pid):
                if started is not None and start_time(pid) == started:
                    out.append(entry)
        return out

    def stop_strays(self, timeout: float = 10.0) -> list[dict[str, Any]]:
        """SIGTERM every stray (SIGKILL after ``timeout``); returns them. Call with the lock held."""
        found = self.strays()
        for entry in found:
            try:
                os.kill(entry["pid"], signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + timeout
        for entry in found:
            while alive(entry["pid"]) and time.monotonic() < deadline:
                time.sleep(0.05)
            if alive(entry["pid"]):
                try:
                    os.kill(entry["pid"], signal.SIGKILL)
                except ProcessLookupError:
                    pass
        with self._guard:
            self._live.clear()
        return found


def data_dir_unusable(path: Path, exc: OSError, root: Path | None = None) -> ConfigError:
    """The error (exit 5) for a data directory ``path`` (or ``path``, a directory of the data dir ``root``: its
    ``logs/``) that cannot be created or written, ``exc`` being what the attempt raised: one sentence naming
    ``--data-dir`` and why, in words (never "unexpected FileExistsError"). Pure but for looking at what ``path``
    is."""
    what = (f"--data-dir {path} (embedded.data_dir)" if root is None
            else f"--data-dir {root} (embedded.data_dir): its {path.name}/")
    return ConfigError(f"{what} {_why_unusable(path, exc)}: give gamead up a directory it can create and write")


def _why_unusable(path: Path, exc: OSError) -> str:
    if path.is_file() or (isinstance(exc, FileExistsError) and not path.is_dir()):
        return "is a file, not a directory"
    if isinstance(exc, NotADirectoryError):
        return "cannot be created: a part of its path is a file, not a directory"
    if isinstance(exc, PermissionError):
        return (f"cannot be written ({exc.strerror or exc}: no write permission there, or the directory is "
                "immutable or on a read-only file system)")
    return f"cannot be written ({exc.strerror or exc})"


@dataclass(frozen=True)
class RunningStack:
    """A ``gamead up`` on ``data_dir``: its PID, its API's URL (None if its file has none), and whether it runs now
    (False: its file is stale, :func:`recorded_stack`)."""

    data_dir: Path
    pid: int
    api_url: str | None
    running: bool = True


def recorded_stack(data_dir: Path) -> RunningStack | None:
    """The ``gamead up`` that ``data_dir``'s ``gamead-up.json`` names, running or not; None without a readable file.
    ``running`` is False when the file is stale: its ``up`` PID is dead, or is another process now (start time,
    where recorded). A CLI verb run there with no API named talks to that stack's ``apiUrl`` even then, so it finds
    it down rather than another stack on the default 8080 (attack41b F5). A file another user owns is none
    (:func:`read_state` ``ours``)."""
    doc = read_state(data_dir, ours=True)
    if not isinstance(doc, dict):
        return None
    pid, started, url = doc.get("pid"), doc.get("pidStart"), doc.get("apiUrl")
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return None
    # a reused PID (another start time) is not the stack that wrote the file
    running = alive(pid) and (started is None or start_time(pid) == started)
    return RunningStack(data_dir, pid, url if isinstance(url, str) and url else None, running)


def read_state(data_dir: Path, *, ours: bool = False) -> Any:
    """The JSON document of ``data_dir``'s ``gamead-up.json``, or None: missing, unreadable, not JSON, or not a
    regular file of at most :data:`MAX_STATE_BYTES` (attack41c F2: a symlink to ``/dev/zero`` there made every CLI
    verb run in that directory read until MemoryError, a FIFO hung it for ever); with ``ours``, also None for a
    file another user owns (attack42c F3: root's verbs run in ``/tmp`` followed the ``/tmp/.gamead`` another user
    wrote, token and all, to a port of theirs; git's "dubious ownership"). Opened without following a symlink
    (``up`` writes the file by a rename, never a link) and without blocking. Raises nothing."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(data_dir / STATE_FILE, flags)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_STATE_BYTES or (ours and info.st_uid != os.geteuid()):
            return None
        with os.fdopen(fd, "rb", closefd=False) as fh:
            return json.loads(fh.read(MAX_STATE_BYTES + 1).decode("utf-8"))
    except (OSError, ValueError):
        return None
    finally:
        os.close(fd)


def running_stack(data_dir: Path) -> RunningStack | None:
    """The ``gamead up`` running on ``data_dir`` (:func:`recorded_stack`); None without that file, or when it is
    stale."""
    stack = recorded_stack(data_dir)
    return stack if stack is not None and stack.running else None


__all__ = ["DataDir", "DataDirBusy", "LOCK_FILE", "MAX_STATE_BYTES", "RunningStack", "STACK_ENV_FILE", "STATE_FILE",
           "data_dir_unusable", "read_state", "recorded_stack", "running_stack"]
