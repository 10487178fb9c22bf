"""``gamead``'s output streams while a command runs: stdout guarded so that a write that fails (a full disk) ends
the command with one red line and exit 1, a closed pipe (``| head``) quietly; and no crash on a character the
terminal's encoding cannot show."""

from __future__ import annotations

import codecs
import io
import os
import sys
from typing import Any

from gamead_cli import exitcodes


#: the errors handler of stdout and stderr: ``?`` for a character the encoding cannot show, the original byte for
#: an undecodable one (a lone surrogate U+DC80-U+DCFF that ``surrogateescape`` read, e.g. from a file name)
REPLACE_HANDLER = "gamead.replace"


def _replace(exc: UnicodeError) -> tuple[str | bytes, int]:
    """:data:`REPLACE_HANDLER`: ``surrogateescape``'s bytes where it has them, else ``replace``'s ``?``."""
    if isinstance(exc, UnicodeEncodeError):
        bad = exc.object[exc.start:exc.end]
        if all("\udc80" <= c <= "\udcff" for c in bad):
            return bytes(ord(c) - 0xDC00 for c in bad), exc.end
    return codecs.replace_errors(exc)


def safe_streams() -> None:
    """Never crash on a character the terminal's encoding cannot show: replace it instead (``?``). Python's own
    handlers are ``strict`` (``PYTHONIOENCODING=ascii``) and, under the C/POSIX locale with UTF-8 mode off,
    ``surrogateescape``, which raises for any non-ASCII character too (attack30c F3: ``env -u LANG LC_ALL=C
    PYTHONUTF8=0 gamead ads list`` ended in "unexpected UnicodeEncodeError" at the first non-ASCII title);
    both become :data:`REPLACE_HANDLER`. Set once, for every verb, by the root group (``gamead_cli.main``)."""
    try:
        codecs.lookup_error(REPLACE_HANDLER)
    except LookupError:
        codecs.register_error(REPLACE_HANDLER, _replace)
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper) and stream.errors in ("strict", "surrogateescape"):
            try:
                stream.reconfigure(errors=REPLACE_HANDLER)
            except (ValueError, io.UnsupportedOperation):  # pragma: no cover - a detached stream
                pass


def _stdout_where(stream: Any) -> str:
    """``stream`` (stdout) as the operator knows it: ``stdout (/dev/full)`` where Linux tells which file its
    descriptor is, else ``stdout``."""
    try:
        target = os.readlink(f"/proc/self/fd/{stream.fileno()}")
    except (OSError, ValueError, AttributeError):  # no descriptor (a test runner's buffer), or not Linux
        return "stdout"
    return f"stdout ({target})" if target.startswith("/") else "stdout"


class GuardedStdout:
    """``sys.stdout`` while a command runs: a write or flush that fails (a full disk, ``EIO``) raises
    :class:`gamead_cli.exitcodes.OutputFailed` naming stdout, so the command ends with one red line and exit 1
    instead of exit 0 (or "unexpected OSError"); a closed pipe (``EPIPE``) is raised as it is (quiet). Everything
    else is the real stream's."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self.broken = False

    def _guard(self, call: Any, *args: Any) -> Any:
        try:
            return call(*args)
        except BrokenPipeError:
            self.broken = True
            raise
        except OSError as exc:
            self.broken = True
            raise exitcodes.OutputFailed(
                f"cannot write the output to {_stdout_where(self._stream)}: {exc.strerror or exc}") from exc

    def write(self, text: str) -> int:
        return self._guard(self._stream.write, text)  # type: ignore[no-any-return]

    def writelines(self, lines: Any) -> None:
        self._guard(self._stream.writelines, lines)

    def flush(self) -> None:
        if not self.broken:
            self._guard(self._stream.flush)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def stdout_broken() -> None:
    if isinstance(sys.stdout, GuardedStdout):
        sys.stdout.broken = True


def silence_stdout(stream: Any) -> None:
    """Point fd 1 at ``/dev/null``: what is left in ``stream``'s buffer is dropped there, not an "Exception
    ignored" at exit (Python's own advice for a closed pipe)."""
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, stream.fileno())
        os.close(null)
    except (OSError, ValueError, AttributeError):  # pragma: no cover - a stream without a descriptor
        pass
