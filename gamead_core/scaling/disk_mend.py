"""When ``gamead up`` restarts its embedded nats-server itself: after a full disk, once the disk has room again
(attack41a F1).

On a full disk nats-server keeps each stream's write error (``no space left on device``) until it restarts: freeing
space is not enough (README "JetStream's storage is full"). Before, a ``gamead up`` stack whose disk was freed went on
refusing every submit (503 ``storage_failing``) and completing nothing until the operator killed nats-server by hand,
as the console and ``gamead doctor`` told them to (a 30 MB tmpfs, freed: still unready 60 s later, and until the
``kill``). ``gamead up`` owns both the store's disk and the process, so it restarts nats-server when all hold:

* the API has answered ``/readyz`` 503 with ``storage: failing`` for more than ``registry.ttl`` s in a row (no
  answer counts neither way; a ready answer ends the spell);
* the last :data:`TAIL_BYTES` of nats-server's log hold a line of *this* nats-server process (each line starts
  ``[PID]``) saying ``no space left on device`` (:func:`out_of_space_logged`): a store at ``max_file_store`` or an
  account limit recovers once room is freed, without a restart, and is never restarted; nor is one that logs
  ``file too large`` (:data:`FILE_TOO_LARGE`: its file-size limit, which its successor inherits; what to do is said
  instead, :mod:`gamead_core.scaling.store_cause`);
* the store's disk has at least :func:`room_needed` free now, and free inodes (:func:`inodes_needed`): a file system
  out of inodes logs the same ``no space left on device`` with its bytes free (attack41c F3: a tmpfs of 64 inodes,
  61 of 64 MB free: nats-server's ``Error creating msg block file: … no space left on device``), and a restart there
  met the same error at once, restarted again past each ``registry.ttl``, saying "has room again".

Once per nats-server process: its successor is restarted only for a line of its own, so a disk that fills again
is met the same way, never by a loop. Pure (clocked by the caller): the log's tail, the disk's free space and the
signal are :mod:`gamead_cli.commands.up_disk`'s.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

#: bytes read from the end of nats-server's log: a failing store logs its error at every write it refuses
TAIL_BYTES: Final[int] = 256 * 1024
#: what nats-server's log says of a write the disk refused (strerror(ENOSPC))
OUT_OF_SPACE: Final[str] = "no space left on device"
#: what nats-server's log says of a write past its file-size limit (strerror(EFBIG): RLIMIT_FSIZE, ``ulimit -f``):
#: no free space and no restart helps, the limit is the process's (attack43a F1)
FILE_TOO_LARGE: Final[str] = "file too large"
#: the free space that always counts as room (bytes), whatever the disk's size
ROOM_FLOOR: Final[int] = 64 * 1024 * 1024
#: the share of a smaller disk that counts as room (of its bytes, and of its inodes)
ROOM_SHARE: Final[float] = 0.10
#: the free inodes that always count as room, whatever the file system's count (a stream's store is a few files)
INODE_FLOOR: Final[int] = 10_000


def room_needed(total: int) -> int:
    """Free bytes on a disk of ``total`` bytes that count as room again: :data:`ROOM_SHARE` of it, at most
    :data:`ROOM_FLOOR` (64 MiB: the store's blocks and the stack's logs, each kept within 10 MiB, start again
    without filling it at once). Pure."""
    return min(ROOM_FLOOR, int(total * ROOM_SHARE))


#: a line about one connection (``127.0.0.1:5555 - cid:5 - …``; a route's ``rid``, a leaf's ``lid``, a gateway's
#: ``gid``): what follows may be the client's own bytes (a parser error quotes them, a CONNECT's name), never a write
#: of the store (attack41c F4: ``proto='"no space left on device\r"...'`` counted as a full disk)
_A_CONNECTIONS = re.compile(r" - [a-z]id:\d+ - ")


def inodes_needed(total: int) -> int:
    """Free inodes of a file system of ``total`` that count as room again: :data:`ROOM_SHARE` of them, at most
    :data:`INODE_FLOOR`; 0 when ``total`` is 0 (a file system that counts none, e.g. btrfs: bytes alone). Pure."""
    return min(INODE_FLOOR, int(total * ROOM_SHARE))


def out_of_space_logged(lines: Iterable[str], pid: int) -> bool:
    """Whether nats-server's log ``lines`` (its tail) hold one of process ``pid`` (``[PID] …``) saying
    :data:`OUT_OF_SPACE`. Pure."""
    return store_error_logged(lines, pid) == OUT_OF_SPACE


def store_error_logged(lines: Iterable[str], pid: int) -> str | None:
    """The write error of its store the last of nats-server's log ``lines`` (its tail) of process ``pid``
    (``[PID] …``) that says one gives: :data:`OUT_OF_SPACE` (a full disk) or :data:`FILE_TOO_LARGE` (its
    file-size limit); None when none says either. A line about a connection never counts (its client's bytes).
    Pure."""
    mark, found = f"[{pid}] ", None
    for line in lines:
        if not line.startswith(mark) or _A_CONNECTIONS.search(line):
            continue
        for words in (OUT_OF_SPACE, FILE_TOO_LARGE):
            if words in line:
                found = words
    return found


class DiskMend:
    """Whether to restart nats-server now, one ``/readyz`` reading at a time. ``ttl``: ``registry.ttl`` (s), how
    long the API must have been unready on storage first."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._since: float | None = None  #: monotonic: the first reading of the present spell of storage failing
        self._pid: int | None = None  #: the nats-server process of that spell
        self._restarted: set[int] = set()  #: nats-server PIDs restarted for their full disk

    def due(self, storage_failing: bool | None, now: float, pid: int | None) -> float | None:
        """After one reading at monotonic ``now`` (``storage_failing``: ``/readyz`` 503 with storage failing; False
        another answer; None no answer, not counted) of the nats-server ``pid`` (None: not running; another PID
        than the spell's starts a new one): how long the spell has lasted (s) when it is past ``ttl`` and that
        process was not restarted yet, so that the caller looks at its log and disk (:meth:`decide`); else None.
        Pure."""
        if storage_failing is None:
            return None
        if not storage_failing or pid is None:
            self._since = None
            return None
        if self._since is None or pid != self._pid:  # a restarted nats-server gets a spell of its own
            self._since, self._pid = now, pid
        spell = now - self._since
        return spell if spell > self.ttl and pid not in self._restarted else None

    def decide(self, pid: int, out_of_space: bool, free: int, total: int, files_free: int = 0,
               files_total: int = 0) -> bool:
        """Whether to restart nats-server ``pid`` now, :meth:`due` having said so: its log says
        :data:`OUT_OF_SPACE` (``out_of_space``) and its store's disk has ``free`` bytes of ``total``, at least
        :func:`room_needed`, and ``files_free`` inodes of ``files_total``, at least :func:`inodes_needed` (0 of 0:
        a file system that counts none). True once per process (recorded). Pure."""
        if not out_of_space or free < room_needed(total) or files_free < inodes_needed(files_total):
            return False
        self._restarted.add(pid)
        return True


__all__ = ["FILE_TOO_LARGE", "INODE_FLOOR", "OUT_OF_SPACE", "ROOM_FLOOR", "ROOM_SHARE", "TAIL_BYTES", "DiskMend",
           "inodes_needed", "out_of_space_logged", "room_needed", "store_error_logged"]
