"""Every file a CLI verb writes (``dlq export FILE``, ``top --record FILE``) goes through here: it is written to a
temporary file in the same directory and renamed over FILE only when the verb succeeded, so a failure (the API
down, a full disk, Ctrl-C) leaves an existing FILE as it was instead of empty or half written. A write to FILE that
fails (a full disk or device, ``EIO``, a pipe or FIFO whose reader left: ``EPIPE``) is
:class:`~gamead_cli.exitcodes.OutputFailed` naming FILE: one red line and exit 1, as stdout's; only stdout's closed
pipe (``| head``) is quiet.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from gamead_cli.exitcodes import OutputFailed


class PendingFile:
    """A text file being written beside ``path`` (``.NAME.XXXX.partial`` in the same directory, so the rename is
    atomic and a killed process leaves what it wrote there, never over ``path``). :meth:`commit` renames it over
    ``path``; :meth:`discard` deletes it. Either one closes it; the second call does nothing.
    Raises ``OSError`` when the directory cannot take the temporary file. A write, flush or close of :attr:`file`
    that fails raises :class:`~gamead_cli.exitcodes.OutputFailed` ("cannot write FILE: why", then ``said``: a text,
    or a function asked for it at the failure, when what was written by then matters), a closed pipe included:
    FILE is not stdout, whose closed pipe alone ends a command quietly.

    A ``path`` that exists and is not a regular file (``/dev/full``, ``/dev/stdout`` on a pipe, a FIFO) is written
    directly: a rename would replace the device itself with a regular file; ``tmp`` is then None. A FIFO that no
    process reads is refused (``OSError`` whose ``strerror`` is :data:`NO_READER`), never waited on. A symbolic link
    to a regular file has its target replaced, never the link."""

    def __init__(self, path: str | Path, said: str | Callable[[], str] = "") -> None:
        self.path, self._said = Path(path), said
        self.done = False
        self.tmp: Path | None = None
        try:
            regular = stat.S_ISREG(os.stat(self.path).st_mode)
        except FileNotFoundError:
            regular = True
        if not regular:
            fd = _open_special(self.path)
            try:
                raw = os.fdopen(fd, "w", encoding="utf-8")
            except BaseException:
                os.close(fd)
                raise
            self.file: IO[str] = _Said(raw, self.path, said)  # type: ignore[assignment]
            return
        #: what the rename replaces: the file itself, a link's target (``/dev/stdout`` redirected to a file too)
        self.target = Path(os.path.realpath(self.path)) if self.path.is_symlink() else self.path
        fd, name = tempfile.mkstemp(prefix=f".{self.target.name}.", suffix=".partial",
                                    dir=self.target.parent or ".")
        self.tmp = tmp = Path(name)
        try:
            os.chmod(tmp, _mode_for(self.target))
            self.file = _Said(os.fdopen(fd, "w", encoding="utf-8"), self.path, said)  # type: ignore[assignment]
        except BaseException:
            os.close(fd)
            tmp.unlink(missing_ok=True)
            raise

    def commit(self) -> None:
        """Flush, close and rename the file over ``path``; the old file stays if that fails. Raises
        :class:`~gamead_cli.exitcodes.OutputFailed` ("cannot write FILE: why", then ``said``) when what is buffered
        cannot be written, ``OSError`` when the rename fails."""
        if self.done:
            return
        self.done = True
        if self.tmp is None:
            self.file.close()  # raises if what was buffered cannot be written
            return
        try:
            self.file.close()
            os.replace(self.tmp, self.target)
        except BaseException:
            self.tmp.unlink(missing_ok=True)
            raise

    def drop_lines(self, lines: set[int]) -> None:
        """Close the file and remove its lines numbered in ``lines`` (0-based; ``\\n``-ended) in place, the others
        kept in order: the last step before :meth:`commit` (``dlq export`` keeping each ad's newest entry). Only a
        temporary file can be filtered (``tmp`` not None: a device's or a FIFO's lines are gone). Raises
        :class:`~gamead_cli.exitcodes.OutputFailed` when the file cannot be written or read again."""
        if self.tmp is None:
            raise ValueError("lines written to a device or a FIFO cannot be taken back")
        self.file.close()  # OutputFailed if what is buffered cannot be written
        try:
            with open(self.tmp, "rb") as src, open(self.tmp, "r+b") as dst:  # dst never passes src: it only shrinks
                for n, line in enumerate(src):
                    if n not in lines:
                        dst.write(line)
                dst.truncate()
        except OSError as exc:
            raise OutputFailed(f"cannot write {self.path}: {exc.strerror or exc}{said_text(self._said)}") from exc

    def discard(self) -> None:
        """Close and delete the temporary file: ``path`` stays as it was (absent, or its old content)."""
        if self.done:
            return
        self.done = True
        with contextlib.suppress(OSError, OutputFailed):
            self.file.close()
        if self.tmp is not None:
            self.tmp.unlink(missing_ok=True)


def said_text(said: str | Callable[[], str]) -> str:
    """What follows "cannot write FILE: why": ``said``, or what the function ``said`` answers now."""
    return said if isinstance(said, str) else said()


class _Said:
    """A text file whose failed write, flush or close is :class:`OutputFailed` naming ``path`` (then ``said``);
    everything else is the file's."""

    def __init__(self, file: IO[str], path: Path, said: str | Callable[[], str]) -> None:
        self._file, self._path, self._said = file, path, said

    def _guard(self, call: Any, *args: Any) -> Any:
        try:
            return call(*args)
        except OSError as exc:  # BrokenPipeError too: a FILE's reader that left is said, not taken for stdout's
            raise OutputFailed(f"cannot write {self._path}: {exc.strerror or exc}{said_text(self._said)}") from exc

    def write(self, text: str) -> int:
        return self._guard(self._file.write, text)  # type: ignore[no-any-return]

    def writelines(self, lines: Any) -> None:
        self._guard(self._file.writelines, lines)

    def flush(self) -> None:
        self._guard(self._file.flush)

    def close(self) -> None:
        self._guard(self._file.close)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._file, name)


#: why a FIFO nobody reads is refused (the ``strerror`` of the ``OSError``: each verb says "cannot write FILE: …")
NO_READER = ("a FIFO that nothing reads: the write would wait for a reader for ever; start its reader first, or "
             "give a regular file")
#: seconds a FIFO is given for its reader to open it (a ``cmd FIFO & reader < FIFO`` starts them in either order)
READER_WAIT = 5.0


def _open_special(path: Path, wait: float = READER_WAIT) -> int:
    """A descriptor open for writing on ``path``, a file that is not a regular file (a device, a FIFO), opened
    without blocking: a FIFO that no process has open for reading is given ``wait`` seconds for one to open it
    (said once on stderr), then refused (``ENXIO``), instead of blocking the verb for ever with no word (attack27
    F9: ``top --once --record FIFO``, ``dlq export FIFO``). Writes then block as usual (``O_NONBLOCK`` is cleared).
    Raises ``OSError``, for a FIFO without a reader with :data:`NO_READER` as its ``strerror``."""
    deadline, said = time.monotonic() + wait, False
    while True:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NONBLOCK", 0), 0o666)
            break
        except OSError as exc:
            fifo = False
            with contextlib.suppress(OSError):
                fifo = stat.S_ISFIFO(os.stat(path).st_mode)
            if exc.errno != errno.ENXIO or not fifo:
                raise
            if time.monotonic() >= deadline:
                raise OSError(errno.ENXIO, NO_READER, str(path)) from None
            if not said:
                print(f"waiting up to {wait:g} s for a process to read the FIFO {path}", file=sys.stderr)
                said = True
            time.sleep(0.05)
    if hasattr(os, "set_blocking"):
        os.set_blocking(fd, True)
    return fd


@contextlib.contextmanager
def replaced_on_success(path: str | Path) -> Iterator[IO[str]]:
    """A text file to write that replaces ``path`` when the ``with`` block ends without an exception; on any
    exception ``path`` is left as it was and the exception goes on. Raises ``OSError`` when the file cannot be
    created (a missing directory, no permission)."""
    pending = PendingFile(path)
    try:
        yield pending.file
    except BaseException:
        pending.discard()
        raise
    pending.commit()


def _mode_for(path: Path) -> int:
    """The permission bits the written file gets: those of the file it replaces, else what ``open(path, 'w')``
    would give a new file (0o666 less the umask); mkstemp's own 0o600 would surprise the user."""
    try:
        return path.stat().st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask
