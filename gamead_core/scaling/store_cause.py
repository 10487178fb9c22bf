"""What to do when JetStream stores no writes, by the cause nats-server's log names (attack43a F1).

Two causes look the same from a client (the store's writes go unanswered or are refused, ``/readyz`` says
``storage: failing``) and need different acts:

* a full disk: nats-server logs ``no space left on device``; free space, then restart nats-server (it keeps each
  stream's write error until it restarts; ``gamead up`` restarts its own once the disk has room again:
  :mod:`gamead_core.scaling.disk_mend`);
* its file-size limit (RLIMIT_FSIZE, ``ulimit -f``): a store file (a stream's message block, a few MiB) reached
  it and nats-server logs ``file too large`` (EFBIG) for every write. The disk may have gigabytes free; a restart
  under the same limit (children inherit it) meets it again. Only starting nats-server (``gamead up``) without the
  limit helps: ``ulimit -f unlimited``, systemd ``LimitFSIZE=infinity``.

Before, ``gamead up``'s unready line and ``gamead doctor``'s ``store_unwritable`` gave the disk advice alone, which
an operator under a file-size limit cannot act on (attack43a: a 4 MiB ``ulimit -f``, GBs free). Now a node that
reads nats-server's log names the cause it logged (:func:`fsize_advice`); one that cannot (NATS not its own: a remote
server, ``gamead doctor``) names both (:data:`BOTH`). Pure but for :func:`file_size_limit` (``/proc``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from gamead_core.scaling.disk_mend import FILE_TOO_LARGE, OUT_OF_SPACE

#: the lift of a file-size limit, in a shell and in a systemd unit
LIFT: Final[str] = "ulimit -f unlimited; systemd LimitFSIZE=infinity"

#: the advice when nats-server's log cannot be read here: both causes, each with its act
BOTH: Final[str] = (f"either the disk of nats-server's store is full (its log says '{OUT_OF_SPACE}': free space "
                    "there, then restart nats-server) or a file of its store reached the file-size limit nats-server "
                    f"runs under (RLIMIT_FSIZE; its log says '{FILE_TOO_LARGE}': free space does not help; restart "
                    f"it without the limit: {LIFT})")


def fsize_of_limits(text: str) -> int | None:
    """The soft ``Max file size`` of a ``/proc/<pid>/limits`` ``text``, in bytes; None when it is ``unlimited`` or
    not there. Pure."""
    for line in text.splitlines():
        if line.startswith("Max file size"):
            soft = line[len("Max file size"):].split()[:1]
            return int(soft[0]) if soft and soft[0].isdigit() else None
    return None


def file_size_limit(pid: int) -> int | None:
    """The soft file-size limit process ``pid`` runs under (``/proc/<pid>/limits``), in bytes; None when it has
    none, or it cannot be read (gone, another user's, not Linux). Never raises."""
    try:
        return fsize_of_limits(Path(f"/proc/{pid}/limits").read_text())
    except (OSError, ValueError):
        return None


def fsize_advice(log: str, store_dir: str, limit: str | None) -> str:
    """The advice of a store at nats-server's file-size limit: its ``log`` said :data:`FILE_TOO_LARGE`; ``limit``:
    its size as said (``8.0 MiB``; None: not readable). Not the disk. Pure."""
    size = f" of {limit}" if limit else ""
    return (f"nats-server's log ({log}) says '{FILE_TOO_LARGE}': a file of its store ({store_dir}) reached the "
            f"file-size limit{size} nats-server runs under (RLIMIT_FSIZE), not the disk; neither free space nor a "
            f"restart under the same limit helps: start it (gamead up) from a shell without the limit ({LIFT})")


__all__ = ["BOTH", "LIFT", "file_size_limit", "fsize_of_limits", "fsize_advice"]
