"""``gamead``'s output streams while a command runs: stdout guarded so that a write that fails (a full disk) or a
closed stdout (``>&-``) ends the command with one red line and exit 1 — saying what a write verb already did
(:func:`done_before_output`) — and a closed pipe (``| head``) quietly, unless a write was done
(:func:`say_what_was_done`); and no crash on a character the terminal's encoding cannot show."""

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
    both become :data:`REPLACE_HANDLER`. Set once, for every verb, by the root group (``gamead_cli.root``)."""
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


#: what the command already did when its output fails: a write verb sets it once its request succeeded (the ad id,
#: the counts, "do not resend"), and the failure's one line carries it (attack30c F2: a retry doubled the ads)
DONE: dict[str, str] = {"note": ""}


def done_before_output(note: str) -> None:
    """Say ``note`` (``the ad WAS queued: id 01…; do not resend it``) with the line of a stdout that cannot be
    written from now on: the request succeeded, only its output is lost."""
    DONE["note"] = note


def _lost(where: str, why: str) -> exitcodes.OutputFailed:
    note = DONE["note"]
    return exitcodes.OutputFailed(f"cannot write the output to {where}{': ' + why if why else ''}"
                                  + (f"; {note}" if note else ""))


class GuardedStdout:
    """``sys.stdout`` while a command runs: a write or flush that fails (a full disk, ``EIO``) raises
    :class:`gamead_cli.exitcodes.OutputFailed` naming stdout, so the command ends with one red line and exit 1
    instead of exit 0 (or "unexpected OSError"); a closed pipe (``EPIPE``) is raised as it is (quiet). Everything
    else is the real stream's."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self.broken = False
        self.reader_left = False  #: a write met a closed pipe (EPIPE): stdout's reader went away

    def _guard(self, name: str, *args: Any) -> Any:
        if self._stream is None:  # fd 1 closed (`>&-`): Python's sys.stdout is None (attack30c F11)
            self.broken = True
            raise _lost("stdout (closed)", "")
        try:
            return getattr(self._stream, name)(*args)
        except BrokenPipeError:  # click ends the command at once (sys.exit(1)): main's `finally` says what was done
            self.broken = self.reader_left = True
            raise
        except OSError as exc:
            self.broken = True
            raise _lost(_stdout_where(self._stream), str(exc.strerror or exc)) from exc

    def write(self, text: str) -> int:
        return self._guard("write", text)  # type: ignore[no-any-return]

    def writelines(self, lines: Any) -> None:
        self._guard("writelines", lines)

    def flush(self) -> None:
        if not self.broken and self._stream is not None:  # nothing written to a closed stdout: nothing lost
            self._guard("flush")

    def isatty(self) -> bool:
        return self._stream is not None and bool(self._stream.isatty())

    def __getattr__(self, name: str) -> Any:
        if self._stream is None:
            raise AttributeError(name)
        return getattr(self._stream, name)


def stdout_broken() -> None:
    if isinstance(sys.stdout, GuardedStdout):
        sys.stdout.broken = True


def reader_gone() -> None:
    """Mark stdout's reader gone (a closed pipe met outside :class:`GuardedStdout`'s own writes)."""
    if isinstance(sys.stdout, GuardedStdout):
        sys.stdout.broken = sys.stdout.reader_left = True


def say_what_was_done(guard: GuardedStdout) -> None:
    """At the end of a command whose stdout's reader went away (``| head -1``, ``| true``): quiet, as Unix tools
    are, unless the command had already done a write (:func:`done_before_output`): then one red line on stderr
    says what was done (the ad's id, the counts, the job), as for a closed stdout, so a ``pipefail`` script that
    sees exit 1 does not do it twice (attack32a F7: the ad was queued, exit 1, nothing said)."""
    if guard.reader_left and DONE["note"]:
        from gamead_cli.failures import error_line

        error_line(str(_lost("stdout (its reader is gone)", "")))
        DONE["note"] = ""  # said once


def silence_stdout(stream: Any) -> None:
    """Point fd 1 at ``/dev/null``: what is left in ``stream``'s buffer is dropped there, not an "Exception
    ignored" at exit (Python's own advice for a closed pipe)."""
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, stream.fileno())
        os.close(null)
    except (OSError, ValueError, AttributeError):  # pragma: no cover - a stream without a descriptor
        pass
