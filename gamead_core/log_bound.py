"""The bound on a child's log file (``gamead up``'s ``.gamead/logs/*.log`` and ``nats-server.log``): each child
appends its output there for as long as it runs, and a flood of refused connections alone made nats-server write
~0.8 MB/s (attack26b F3), while a full disk stops JetStream.

Past :data:`LOG_LIMIT` bytes the log is copied to ``<name>.1`` (replacing the older copy) and truncated in place,
as logrotate's ``copytruncate``: the child's descriptor is ``O_APPEND`` (the supervisor opens it ``"ab"``), so it
goes on writing at the new end, with no restart and no signal. Lines written between the end of the copy and the
truncation are lost (a few at most, as with ``copytruncate``). So a child's output takes at most about twice the
limit on disk."""

from __future__ import annotations

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


def bound_log(path: Path, limit: int = LOG_LIMIT) -> bool:
    """If ``path`` holds more than ``limit`` bytes, copy it to :func:`rotated` (replacing it) and truncate it to
    0 in place; True if it did. A missing file is nothing to do; an ``OSError`` (a full disk for the copy) is
    logged and the log left as it is (the copy removed), never raised: a child's log must not stop the stack."""
    try:
        if path.stat().st_size <= limit:
            return False
    except OSError:  # gone (not started yet, removed by hand) or unreadable: nothing to bound
        return False
    older = rotated(path)
    try:
        shutil.copyfile(path, older)
        os.truncate(path, 0)
    except OSError as exc:
        log.warning("could not rotate %s past %d bytes: %s", path, limit, exc)
        older.unlink(missing_ok=True)
        return False
    return True
