"""Ports a running ``gamead up`` keeps for its children's restarts, reserved machine-wide among gamead stacks.

A stack restarts its API, its embedded nats-server and its workers on the ports they had. While one of them is
down (a restart's gap, or the whole ``up`` stopped), its port is free, and another stack started then could take
it: its nats-server on the first stack's NATS port, and the first stack's API and workers reconnect to the other
stack's NATS, their ads landing in the other stack's store. So ``up`` *claims* each such port: an
``fcntl.flock``-ed file per port, ``<port>.lock`` in a per-user directory under the temp dir
(:func:`claims_dir`), holding the claimer's PID, data dir and what the port is for. The kernel drops a
``flock`` when its holder dies, however it dies, so a claim is never stale. Another ``up`` treats a claimed
port as taken: it refuses a fixed one (exit 5, naming the holder) and skips one when it picks a port itself.
A port is claimed whatever the host it is bound on. Lock files are opened close-on-exec: children never hold
them, so a claim ends with its ``up``. A claim given back removes its file while still locked, and a claimer
checks that the file it locked is still the one at the path (else it tries again), so files do not pile up and
two claimers never lock two files of one port; a file left by a killed ``up`` is reused, and removed by the next
``up``'s sweep at its start (:meth:`PortClaims.sweep`) if nobody claims it then.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from gamead_core.embedded import free_port
from gamead_core.errors import ConfigError

_PICKS = 64


def claims_dir() -> Path:
    """The per-user directory of the claims: ``<temp dir>/gamead-<uid>/ports``."""
    return Path(tempfile.gettempdir()) / f"gamead-{os.getuid()}" / "ports"


@dataclass(frozen=True)
class Holder:
    """Who claims a port: the ``gamead up``'s ``pid`` (None if its file did not say yet), its ``data_dir`` and
    what the port is ``for`` (``its API`` …)."""

    pid: int | None
    data_dir: str
    purpose: str

    def describe(self) -> str:
        """``another `gamead up` (pid 1234, data dir /x/.gamead) for its API``."""
        pid = f"pid {self.pid}" if self.pid is not None else "pid unknown"
        where = f", data dir {self.data_dir}" if self.data_dir else ""
        what = f" for {self.purpose}" if self.purpose else ""
        return f"another `gamead up` ({pid}{where}){what}"


class PortReserved(ConfigError):
    """A port another running ``gamead up`` keeps for its children's restarts (exit 5, as a taken port)."""


@dataclass
class PortClaims:
    """The ports this process claims (:meth:`claim`), held until :meth:`release_all` or its death.

    ``data_dir``: written into each claim, to name this stack to another one. ``directory``: where the lock
    files are (:func:`claims_dir` by default). If that directory cannot be made private to this user, claims
    are off (:attr:`unusable` says why) and every port counts as unclaimed, as before claims existed."""

    data_dir: Path
    directory: Path = field(default_factory=claims_dir)
    held: dict[int, IO[str]] = field(default_factory=dict, init=False, repr=False)
    unusable: str | None = field(default=None, init=False)
    #: lock files nobody held, removed when this was made (:meth:`sweep`)
    swept: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        try:
            self.directory.parent.mkdir(mode=0o700, exist_ok=True)
            self.directory.mkdir(mode=0o700, exist_ok=True)
            info = self.directory.lstat()
            parent = self.directory.parent.lstat()
        except OSError as exc:
            self.unusable = f"cannot create {self.directory}: {exc.strerror or exc}"
            return
        if not self.directory.is_dir() or self.directory.is_symlink() or info.st_uid != os.getuid() \
                or parent.st_uid != os.getuid() or (info.st_mode | parent.st_mode) & 0o022:
            self.unusable = f"{self.directory} is not a directory only this user can write"
            return
        self.swept = self.sweep()

    def sweep(self) -> int:
        """Remove the lock files nobody holds (left by an ``up`` that was killed, which cannot remove its own):
        each is locked, removed while locked, then closed, as :meth:`release` does, so a claimer racing with the
        sweep finds the file gone and claims a new one. Returns how many were removed. Run at every start."""
        removed = 0
        try:
            names = [entry.name for entry in os.scandir(self.directory) if entry.name.endswith(".lock")]
        except OSError:
            return 0
        for name in names:
            port = name.removesuffix(".lock")
            if port.isdigit() and int(port) not in self.held:
                fh = self._try_lock(int(port), create=False)
                if fh is not None and not isinstance(fh, Holder):
                    removed += self._drop(int(port), fh)
        return removed

    def _drop(self, port: int, fh: IO[str]) -> int:
        """Remove ``port``'s lock file, locked by us in ``fh``, then unlock it; 1 if removed."""
        try:
            (self.directory / f"{port}.lock").unlink()
            gone = 1
        except OSError:
            gone = 0  # removed already: nothing to tidy
        fh.close()  # closing the file drops the flock
        return gone

    def holder(self, port: int) -> Holder | None:
        """Who else claims ``port`` now; None if nobody (or this process) does."""
        if port in self.held or self.unusable:
            return None
        fh = self._try_lock(port, create=False)
        if isinstance(fh, Holder):
            return fh
        if fh is not None:
            self._drop(port, fh)  # a file nobody holds: tidied as the sweep does
        return None

    def claim(self, port: int, purpose: str) -> Holder | None:
        """Claim ``port`` for ``purpose`` (``its API``); returns None once it is ours (already or now), else the
        other :class:`Holder`, leaving the claim to it. Never waits."""
        if port in self.held or self.unusable:
            return None
        fh = self._try_lock(port)
        if isinstance(fh, Holder):
            return fh
        if fh is None:
            return None  # the file cannot be opened: unclaimed, as without claims
        fh.seek(0)
        fh.truncate()
        fh.write(f"{os.getpid()}\n{self.data_dir.resolve()}\n{purpose}\n")
        fh.flush()
        self.held[port] = fh
        return None

    def require(self, port: int, purpose: str, what: str, fix: str) -> None:
        """Claim ``port`` for ``purpose`` or raise :class:`PortReserved` (exit 5): one line naming the holder,
        that ``what`` (``the API``) cannot listen there, and ``fix`` (``choose another with --port``)."""
        other = self.claim(port, purpose)
        if other is not None:
            raise PortReserved(f"port {port} is reserved by {other.describe()} (kept for its restarts while that "
                               f"stack runs): {what} cannot listen there — {fix}")

    def pick(self, host: str, purpose: str) -> int:
        """A port free on ``host`` a moment ago (:func:`gamead_core.embedded.free_port`), now claimed for
        ``purpose``: one another stack claims is skipped, and so is one this stack holds already (a child's kept
        port, free while that child restarts: given out twice, its release would drop the other's claim)."""
        for _ in range(_PICKS):
            port = free_port(host)
            if port not in self.held and self.claim(port, purpose) is None:
                return port
        return free_port(host)

    def release(self, port: int) -> None:
        """Give ``port`` back (no-op if it is not ours): its file is removed, then unlocked."""
        fh = self.held.pop(port, None)
        if fh is not None:
            self._drop(port, fh)

    def release_all(self) -> None:
        """Give every claimed port back (also done by the kernel when this process ends)."""
        for port in list(self.held):
            self.release(port)

    def _try_lock(self, port: int, *, create: bool = True) -> IO[str] | Holder | None:
        """The port's lock file, locked by us; else its :class:`Holder`; None if it cannot be opened (or, not
        ``create``-ing, there is none: nobody claims the port)."""
        path = self.directory / f"{port}.lock"
        for _ in range(8):
            try:
                # "a+" creates; "r+" only opens, so a look (holder, sweep) leaves no file behind
                fh = open(path, "a+" if create else "r+", encoding="utf-8")  # noqa: SIM115 - held while claimed
            except OSError:
                return None
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return self._holder_of(fh)
            try:
                same = os.fstat(fh.fileno()).st_ino == path.stat().st_ino
            except OSError:
                same = False  # removed by a release meanwhile
            if same:
                return fh
            fh.close()  # we locked a file a release removed: try the one at the path now
        return None

    @staticmethod
    def _holder_of(fh: IO[str]) -> Holder:
        """The :class:`Holder` written in a lock file someone else holds; closes ``fh``."""
        try:
            fh.seek(0)
            lines = fh.read().splitlines()
        finally:
            fh.close()
        pid = lines[0].strip() if lines else ""
        return Holder(int(pid) if pid.isdigit() else None, lines[1].strip() if len(lines) > 1 else "",
                      lines[2].strip() if len(lines) > 2 else "")


__all__ = ["Holder", "PortClaims", "PortReserved", "claims_dir"]
