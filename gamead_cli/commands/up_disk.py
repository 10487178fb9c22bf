"""``gamead up`` and the disk of its data dir: it restarts its embedded nats-server once the disk has room again
after a full disk (attack41a F1; when: :mod:`gamead_core.scaling.disk_mend`): the readings of its log and disk,
the signal, the console line; the cause its log names (a file-size limit: attack43a F1); and it says at its start
when that disk has less room than that (attack41a F2)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import time
from collections.abc import Callable
from pathlib import Path

from gamead_cli.commands.up_logs import log_tail
from gamead_cli.commands.up_stack import NATS_CHILD, UpStack
from gamead_cli.formats import byte_size
from gamead_core.errors import ConfigError, GameadError
from gamead_core.scaling.disk_mend import (
    OUT_OF_SPACE,
    TAIL_BYTES,
    FILE_TOO_LARGE,
    DiskMend,
    out_of_space_logged,
    room_needed,
    store_error_logged,
)
from gamead_core.scaling.nats_watch import Note
from gamead_core.scaling.ready_watch import Reading, storage_failing
from gamead_core.scaling.store_cause import file_size_limit, fsize_advice


def disk_mend(ttl: float, stack: UpStack, store_dir: Path,
              clock: Callable[[], float] = time.monotonic) -> Callable[[Reading], Note | None]:
    """A step for each reading of the API's ``/readyz`` (``ttl``: ``registry.ttl``, s; ``store_dir``: the embedded
    nats-server's store, ``DATA_DIR/jetstream``): when :class:`DiskMend` says so, SIGTERM the running nats-server of
    ``stack`` (its supervisor starts it again on the same port and store, as after any death) and return the
    console line saying why; else None. Never raises."""
    mend = DiskMend(ttl)

    def step(reading: Reading) -> Note | None:
        child = stack.sup.children.get(NATS_CHILD)
        pid = child.pid if child is not None and child.alive and not child.retired else None
        failing = None if reading.ready is None else (not reading.ready and storage_failing(reading.failing))
        spell = mend.due(failing, clock(), pid)
        if spell is None or child is None or pid is None:
            return None
        if (room := store_room(store_dir)) is None:
            return None
        free, total, files_free, files_total = room
        if not mend.decide(pid, out_of_space_logged(log_tail(child.log_path, TAIL_BYTES), pid), free, total,
                           files_free, files_total):
            return None
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        return Note(False, mend_line(pid, spell, store_dir, free, total, child.log_path))

    return step


def store_cause(stack: UpStack, store_dir: Path) -> Callable[[], str | None]:
    """The ``cause()`` of ``gamead up``'s :class:`~gamead_core.scaling.ready_watch.ReadyWatch`: when the running
    nats-server of ``stack`` last logged :data:`FILE_TOO_LARGE` of its store (``store_dir``), the file-size limit's
    advice, naming the limit's size from its ``/proc/<pid>/limits`` where readable (attack43a F1: the disk's advice
    was given with GBs free); else None (the disk's advice stands). Never raises."""

    def cause() -> str | None:
        logged = _store_error(stack, store_dir)
        return None if logged is None else logged[2]

    return cause


def _store_error(stack: UpStack, store_dir: Path) -> tuple[str, Path, str | None] | None:
    """The write error of its store (``store_dir``) the running nats-server of ``stack`` last logged
    (:func:`~gamead_core.scaling.disk_mend.store_error_logged`: :data:`OUT_OF_SPACE` or :data:`FILE_TOO_LARGE`),
    its log, and for :data:`FILE_TOO_LARGE` the file-size limit's advice (:func:`fsize_advice`, the limit's size
    from its ``/proc/<pid>/limits`` where readable; else None); None when none runs or it logged none. Never
    raises."""
    child = stack.sup.children.get(NATS_CHILD)
    if child is None or child.pid is None:
        return None
    said = store_error_logged(log_tail(child.log_path, TAIL_BYTES), child.pid)
    if said != FILE_TOO_LARGE:
        return None if said is None else (said, child.log_path, None)
    limit = file_size_limit(child.pid)
    return said, child.log_path, fsize_advice(str(child.log_path), str(store_dir),
                                              None if limit is None else byte_size(limit))


def start_blamed_on_store(error: GameadError, stack: UpStack, store_dir: Path) -> GameadError:
    """The error ``gamead up`` ends its start with when its API was not ready (``error``, from
    :func:`~gamead_cli.commands.up_start.wait_api_ready`): when the running nats-server of ``stack`` logged a write
    error of its store (``store_dir``, ``DATA_DIR/jetstream``), a :class:`ConfigError` (exit 5: a data dir it
    cannot use, as a disk with no room at all is refused at once) with ``error``'s words and the cause: the disk
    full, with its free and total bytes, or the file-size limit (:func:`fsize_advice`). Else ``error`` as it is
    (a refusal of the API's own, exit 5 already, too). Before (attack56 F1), a start on a disk with 92 KiB free
    ended after 37 s with exit 1 and ``consumer gamead-p4 missing, not created: … (code 10012)``, the disk unsaid
    but in the warning 40 lines up. Never raises."""
    if isinstance(error, ConfigError) or (logged := _store_error(stack, store_dir)) is None:
        return error
    _said, log, cause = logged
    if cause is None:  # out of space
        room = store_room(store_dir)
        free = "" if room is None else f" ({byte_size(room[0])} free of {byte_size(room[1])})"
        cause = (f"nats-server's log ({log}) says '{OUT_OF_SPACE}': the disk of its store ({store_dir}) "
                 f"is full{free}, so JetStream could not create what the stack needs; free space there, or give "
                 "gamead up another --data-dir")
    return ConfigError(f"{error.message.rstrip('.')}. Why: {cause}")


def store_room(store_dir: Path) -> tuple[int, int, int, int] | None:
    """The room of the disk of ``store_dir``: ``(free bytes, total bytes, free inodes, total inodes)``, free as an
    unprivileged process gets it (``statvfs``: ``f_bavail``, ``f_favail``; total inodes 0 where the file system
    counts none); None when it cannot be read. Inodes too (attack41c F3): a disk out of inodes says ``no space
    left on device`` with bytes free."""
    try:
        st = os.statvfs(store_dir)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize, st.f_blocks * st.f_frsize, st.f_favail, st.f_files


def mend_line(pid: int, spell: float, store_dir: Path, free: int, total: int, log: Path) -> str:
    """The console line of nats-server ``pid`` restarted after its full disk (``spell``: s the API has been
    unready on storage; ``free``/``total``: bytes of the store's disk). Pure."""
    return (f"nats-server (pid {pid}) logged '{OUT_OF_SPACE}' ({log}) and the API has refused submits for "
            f"{spell:.0f}s (storage failing); the disk of its store ({store_dir}) has room again ({byte_size(free)} "
            f"free of {byte_size(total)}): restarting nats-server (SIGTERM), as a full disk leaves its streams "
            "refusing writes until it restarts; JetStream recovers from its store")


def low_room_line(data_dir: Path) -> str | None:
    """The console line of a ``gamead up`` starting on ``data_dir`` whose disk has less free than
    :func:`~gamead_core.scaling.disk_mend.room_needed` (a tenth of it, at most 64 MiB: the room it restarts a
    nats-server for after a full disk), or None (room enough, or the disk cannot be read: the start's own writes
    say so). Before (attack41a F2), a start with 300 KiB free said nothing, and the first submits past it failed."""
    try:
        usage = shutil.disk_usage(data_dir)
    except OSError:
        return None
    return None if usage.free >= room_needed(usage.total) else low_room_words(data_dir, usage.free, usage.total)


def low_room_words(data_dir: Path, free: int, total: int) -> str:
    """The words of :func:`low_room_line` for ``free`` bytes of ``total`` on the disk of ``data_dir``. Pure."""
    return (f"the disk of {data_dir} has {byte_size(free)} free of {byte_size(total)}, less than "
            f"{byte_size(room_needed(total))} (a tenth of it, at most 64 MiB): JetStream stops storing writes once "
            "it is full, and every submit is refused (503) until there is room again; free space there, or give "
            "gamead up another --data-dir")


__all__ = ["disk_mend", "low_room_line", "low_room_words", "mend_line", "start_blamed_on_store", "store_cause",
           "store_room"]
