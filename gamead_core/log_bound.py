"""The bound on a child's log file (``gamead up``'s ``.gamead/logs/*.log`` and ``nats-server.log``): each child
appends its output there for as long as it runs, and a flood of refused connections alone made nats-server write
~0.8 MB/s (attack26b F3), while a full disk stops JetStream.

Past :data:`LOG_LIMIT` bytes the log is copied to ``<name>.1`` (replacing the older copy) and truncated in place,
as logrotate's ``copytruncate``: the child's descriptor is ``O_APPEND`` (the supervisor opens it ``"ab"``), so it
goes on writing at the new end, with no restart and no signal. Lines written between the end of the copy and the
truncation are lost (a few at most, as with ``copytruncate``). So a child's output takes at most about twice the
limit on disk.

**A copy that cannot be made** (less free space than the log's size twice over, ENOSPC, EACCES, a directory in the
way…) never stops the bound (review26 F4): the log is truncated anyway, its lines dropped, since a full disk stops
JetStream, which is worse than lost log lines. The copy is written to ``<name>.1.tmp`` (``O_NOFOLLOW``) and renamed
over ``<name>.1`` only once whole, so a failed copy keeps the previous ``<name>.1``. It is said once per failure
spell (per log, until a copy succeeds again), never every second."""

from __future__ import annotations

import errno
import logging
import os
import shutil
from pathlib import Path

log = logging.getLogger(__name__)

#: bytes a child's log may reach before it is rotated (10 MiB)
LOG_LIMIT = 10 * 1024 * 1024
#: seconds between two looks at the logs' sizes (one ``stat`` each)
CHECK_EVERY = 1.0


def rotated(path: Path) -> Path:
    """The one older copy of log ``path``: ``<name>.1``."""
    return path.with_name(path.name + ".1")


def file_tail(path: Path, nbytes: int) -> str:
    """The text of the last ``nbytes`` bytes of ``path`` (UTF-8, undecodable bytes replaced); "" if it cannot be
    read. Never more than ``nbytes`` are read, also of a log that grows meanwhile: a log of gigabytes costs no
    more memory than its end (``gamead up``'s children's logs, an embedded server's that exited at start)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(max(0, fh.seek(0, os.SEEK_END) - nbytes))
            return fh.read(nbytes).decode("utf-8", "replace")
    except OSError:
        return ""


#: logs whose last copy failed (warned once; cleared by the next copy that succeeds)
_FAILING: set[Path] = set()


#: bytes read and written at a time by a log's copy
COPY_CHUNK = 1024 * 1024


def _copy(path: Path, older: Path, size: int) -> None:
    """Copy the first ``size`` bytes of ``path`` (its size as measured) to ``older`` through ``<older>.tmp``
    (replaced only when whole). Never more: the copy runs in ``gamead up``'s event loop, and a child writing faster
    than it copies kept it there, copying until an end of file that moved on (fix56c; rule: no input may block the
    event loop); what was written since is truncated with the rest, as the lines between copy and truncation always
    were. Raises ``OSError``; leaves no ``.tmp`` behind."""
    free = shutil.disk_usage(path.parent).free
    if free < 2 * size:  # the copy would leave the disk (nearly) full for JetStream
        raise OSError(errno.ENOSPC, f"{free} bytes free, the copy needs {size} and as much left")
    tmp = older.with_name(older.name + ".tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
        with open(fd, "wb") as dst, path.open("rb") as src:
            left = size
            while left > 0 and (chunk := src.read(min(COPY_CHUNK, left))):
                dst.write(chunk)
                left -= len(chunk)
        os.replace(tmp, older)
    except OSError:
        if not tmp.is_dir():
            tmp.unlink(missing_ok=True)
        raise


def bound_log(path: Path, limit: int = LOG_LIMIT) -> bool:
    """If ``path`` holds more than ``limit`` bytes, copy it to :func:`rotated` (replacing it) and truncate it to
    0 in place; True if it was truncated. When the copy fails, the log is truncated all the same and the older
    copy kept; a warning says what was dropped, once per failure spell. A missing file is nothing to do; an
    ``OSError`` is logged, never raised: a child's log must not stop the stack."""
    try:
        size = path.stat().st_size
    except OSError:  # gone (not started yet, removed by hand) or unreadable: nothing to bound
        return False
    if size <= limit:
        return False
    older = rotated(path)
    try:
        _copy(path, older, size)
        failed: OSError | None = None
    except OSError as exc:
        failed = exc
    try:
        os.truncate(path, 0)
    except OSError as exc:
        if path not in _FAILING:
            log.warning("could not empty %s past %d bytes: %s", path, limit, exc)
            _FAILING.add(path)
        return False
    if failed is None:
        if path in _FAILING:
            _FAILING.discard(path)
            log.info("%s is copied to %s again", path, older)
    elif path not in _FAILING:
        _FAILING.add(path)
        log.warning("could not copy %s to %s (%s): emptied it anyway, its %d bytes of older lines dropped, %s "
                    "kept as it was; said once until a copy succeeds", path, older, failed, size, older.name)
    return True
