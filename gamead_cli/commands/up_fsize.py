"""The file-size limit (``RLIMIT_FSIZE``, ``ulimit -f``) ``gamead up`` and its embedded nats-server run under.

A finite limit caps every file a process writes: nats-server's store files (a stream's message blocks, up to a
few MiB each) included. Under ``ulimit -f 4096`` (4 MiB) the ad bucket's first block reached it after ~1,300 ads,
JetStream logged ``file too large`` (EFBIG) for every write, and every submit was refused (503) for good, while the
console, ``/readyz`` and ``gamead doctor`` told the operator to free space on a disk that had gigabytes free
(attack43a F1). ``gamead up`` now raises the soft limit to the hard one first thing, as it does the open-files
limit (:mod:`gamead_core.fd_limit`), so a soft-only ``ulimit -S -f`` no longer reaches its children; a limit it
cannot raise (the hard one is finite: ``ulimit -f N`` sets both) is said once on its console at the start, with
the command that lifts it.
"""

from __future__ import annotations

import resource

from gamead_cli.formats import byte_size
from gamead_core.fd_limit import raise_soft
from gamead_core.scaling.store_cause import LIFT

__all__ = ["fsize_words", "raise_fsize"]


def raise_fsize() -> int | None:
    """Raise this process's soft ``RLIMIT_FSIZE`` to its hard limit (:func:`gamead_core.fd_limit.raise_soft`;
    children inherit it); returns the soft limit now in force, in bytes, or None when there is none (unlimited)."""
    soft = raise_soft(resource.RLIMIT_FSIZE)
    return None if soft == resource.RLIM_INFINITY else soft


def fsize_words(limit: int | None, store_dir: str) -> str:
    """``""`` for no file-size limit (``limit`` None); else the words of ``gamead up``'s start line for a limit of
    ``limit`` bytes (already raised to the hard one) on the embedded nats-server whose store is ``store_dir``:
    what it does to the store and how to lift it. Pure."""
    if limit is None:
        return ""
    return (f"a file-size limit of {byte_size(limit)} (RLIMIT_FSIZE, ulimit -f; its hard limit, so it cannot be "
            f"raised here) applies to gamead up and every process it starts: once a file of nats-server's store "
            f"({store_dir}) reaches it, JetStream refuses writes ('file too large' in its log) and every submit is "
            f"refused (503) whatever the free space; start gamead up from a shell without it ({LIFT})")
