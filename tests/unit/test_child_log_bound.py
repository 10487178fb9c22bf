"""attack26b F3: ``gamead up`` appended each child's output to its log with no bound; a local script flooding the
NATS port with refused connections grew ``nats-server.log`` by ~0.8 MB/s (a full disk stops JetStream). The
supervisor now keeps every child's log within a limit: past it, copied to ``<name>.1`` and truncated in place,
the child writing on at the new end (its descriptor is ``O_APPEND``). A real child writing fast."""

from __future__ import annotations

import logging
import os
import sys
import threading
from pathlib import Path

import pytest

from gamead_core.log_bound import bound_log, rotated
from gamead_core.supervisor import Supervisor
from tests.support import frozen, wait_for

LIMIT = 64 * 1024
WRITE = 1024  #: one write of the child: a line of 1 KiB
FLOOD = ("import sys, time\n"
         "n = 0\n"
         "while True:\n"
         "    n += 1\n"
         f"    sys.stdout.write(('line %08d ' % n).ljust({WRITE - 1}, 'x') + '\\n'); sys.stdout.flush()\n"
         "    time.sleep(0.0005)\n")


def test_a_child_writing_fast_keeps_its_log_within_the_limit_and_one_older_copy(tmp_path: Path) -> None:
    sup = Supervisor(on_event=lambda message: None, log_limit=LIMIT)
    log = tmp_path / "logs" / "flood.log"
    child = sup.start("flood", [sys.executable, "-u", "-c", FLOOD], dict(os.environ), log)
    try:
        def rotated_once() -> bool:
            sup.poll()
            return rotated(log).exists()

        wait_for(rotated_once, timeout=30, interval=0.1, what="the log to be rotated")
        assert child.pid is not None
        with frozen(child.pid):  # between two writes: what the check leaves
            sup.bound_logs()
            assert log.stat().st_size <= LIMIT + WRITE
            assert rotated(log).stat().st_size > LIMIT  # the older lines are kept once, in <name>.1
        wait_for(lambda: log.stat().st_size > 10 * WRITE, timeout=30, what="the child to write on")
        assert log.read_bytes()[:5] == b"line "  # at the new end, not after a hole of NULs at the old offset
        for _ in range(3):  # it keeps rotating, never growing past the limit for long
            before = rotated(log).stat().st_ino, rotated(log).stat().st_mtime_ns
            wait_for(lambda: rotated_once() and (rotated(log).stat().st_ino, rotated(log).stat().st_mtime_ns)
                     != before, timeout=30, interval=0.1, what="another rotation")
        assert child.alive and child.restarts == 0
        assert not list(log.parent.glob("flood.log.2*"))  # one older copy, no more
    finally:
        sup.stop_all(timeout=5)


def test_a_log_whose_copy_cannot_be_made_is_emptied_anyway_keeping_the_older_copy_and_said_once(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """review26 F4: when the copy failed (a full disk, a directory in the way) the log was never emptied, the
    warning came back every second and the older copy was already overwritten. Now the log is emptied anyway,
    ``<name>.1`` stays as it was, and one warning says what was dropped."""
    log = tmp_path / "nats-server.log"
    rotated(log).write_bytes(b"the older lines\n")
    tmp = rotated(log).with_name(rotated(log).name + ".tmp")
    tmp.mkdir()  # the copy cannot be written, even by root
    caplog.set_level(logging.WARNING, logger="gamead_core.log_bound")
    for n in range(3):  # three checks in a row: the log keeps growing past the limit
        log.write_bytes(b"x" * (LIMIT + 1 + n))
        assert bound_log(log, LIMIT)
        assert log.stat().st_size == 0
    assert rotated(log).read_bytes() == b"the older lines\n"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and f"{LIMIT + 1} bytes of older lines dropped" in warnings[0], warnings
    tmp.rmdir()
    log.write_bytes(b"y" * (LIMIT + 1))
    assert bound_log(log, LIMIT)  # the way is clear: copied again
    assert log.stat().st_size == 0 and rotated(log).read_bytes() == b"y" * (LIMIT + 1)
    assert not tmp.exists()


def test_a_copy_ends_at_the_size_measured_however_fast_the_child_writes_on(tmp_path: Path) -> None:
    """fix56c: the copy ran until the end of the file, in ``gamead up``'s event loop: a child writing faster than
    it copied kept the loop copying. A writer that never stops, in lockstep with the copy (each chunk copied, read
    out of a FIFO at ``<name>.1.tmp``, is appended to the log again): the copy ends at the size measured (before:
    never, the writer gave up), and the log is emptied."""
    log = tmp_path / "flood.log"
    size = 8 * LIMIT  # 8 pipe buffers (64 KiB): a write of the copy returns once the writer appended 7 of them
    log.write_bytes(b"x" * size)
    fifo = tmp_path / "flood.log.1.tmp"
    os.mkfifo(fifo)
    cap = 10 * size  #: the writer gives up only past this (the copy never ended)
    copied = {"bytes": 0, "capped": False}

    def writer() -> None:
        with fifo.open("rb") as pipe, log.open("ab") as out:
            while chunk := pipe.read(4096):
                copied["bytes"] += len(chunk)
                out.write(chunk)
                out.flush()
                if copied["bytes"] >= cap:
                    copied["capped"] = True
                    return  # closes the FIFO: the copy fails (EPIPE), the bound goes on

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    assert bound_log(log, LIMIT)
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert (copied["capped"], copied["bytes"]) == (False, size)
    assert log.stat().st_size <= size  # emptied; what the writer appended since is all it holds
