"""attack43a F1, left: under a hard file-size limit (``ulimit -f``) nats-server logs ``file too large`` for every
write of a store file at the limit, and ``gamead up``'s unready line and ``gamead doctor``'s ``store_unwritable``
said "free space on the disk …, then restart nats-server" (GBs free). The pure half: the log's cause, the limit's
size, each advice. With the fix: 4 passed; without it (ready_watch.py, disk_mend.py, writable.py of 3852cae7): the
imports fail (1 collection error); past them the unready line and doctor detail give the disk's advice alone."""

from __future__ import annotations

from gamead_core.doctor.writable import unstored_line
from gamead_core.scaling.disk_mend import FILE_TOO_LARGE, OUT_OF_SPACE, out_of_space_logged, store_error_logged
from gamead_core.scaling.ready_watch import Reading, ReadyWatch, unready_line
from gamead_core.scaling.store_cause import BOTH, fsize_of_limits, fsize_advice

#: a line as nats-server logs a write past its file-size limit (attack43a: the ad bucket's first block)
TOO_LARGE = "[42] 2026/12/05 10:11:12.123456 [ERR] JetStream failed to store a msg on stream '$G > KV_gamead_ads': " \
            "write /d/jetstream/$G/streams/KV_gamead_ads/msgs/1.blk: file too large"
FULL = TOO_LARGE.replace("file too large", "no space left on device")
LIMITS = """Limit                     Soft Limit           Hard Limit           Units
Max cpu time              unlimited            unlimited            seconds
Max file size             1048576              1048576              bytes
Max data size             unlimited            unlimited            bytes
"""
FAILING = {"storage": "failing: NATS did not answer in time (for 12 s)"}


def test_the_log_names_which_of_the_two_causes_its_last_line_of_this_process_gives() -> None:
    assert store_error_logged([TOO_LARGE], 42) == FILE_TOO_LARGE
    assert store_error_logged([FULL], 42) == OUT_OF_SPACE and out_of_space_logged([FULL], 42)
    assert store_error_logged([FULL, TOO_LARGE], 42) == FILE_TOO_LARGE, "the last one said"
    assert store_error_logged([TOO_LARGE, FULL], 42) == OUT_OF_SPACE
    assert not out_of_space_logged([TOO_LARGE], 42), "no restart for a file-size limit: a restart meets it again"
    assert store_error_logged([TOO_LARGE], 43) is None, "another process's line"
    client = "[42] 2026/12/05 07:42:36.154580 [ERR] 127.0.0.1:59442 - cid:6 - \"file too large\" - Client parser"
    assert store_error_logged([client], 42) is None, "a client's own bytes"


def test_the_limit_is_read_from_proc_limits() -> None:
    assert fsize_of_limits(LIMITS) == 1024 * 1024
    assert fsize_of_limits(LIMITS.replace("1048576              1048576", "unlimited            unlimited")) is None
    assert fsize_of_limits("") is None


def test_the_unready_line_names_the_file_size_limit_not_the_disk() -> None:
    words = fsize_advice("/d/nats-server.log", "/d/jetstream", "1.0 MiB")
    watch = ReadyWatch(10.0, "/d/jetstream", lambda: "restart nats-server (kill 42)", cause=lambda: words)
    assert all(watch.observe(Reading(False, FAILING), t) is None for t in (100.0, 105.0, 110.0))
    note = watch.observe(Reading(False, FAILING), 110.5)
    assert note is not None and "nats-server's log (/d/nats-server.log) says 'file too large'" in note.text
    assert "the file-size limit of 1.0 MiB nats-server runs under (RLIMIT_FSIZE), not the disk" in note.text
    assert "ulimit -f unlimited" in note.text and "free space on the disk" not in note.text, note.text
    assert "kill 42" not in note.text, "a restart under the same limit meets it again"
    unknown = fsize_advice("/d/nats-server.log", "/d/jetstream", None)
    assert "reached the file-size limit nats-server runs under" in unknown, unknown


def test_where_the_log_is_not_ours_both_causes_are_said() -> None:
    line = unready_line("the API (pid 7)", 12.0, 10.0, FAILING)  # NATS not gamead up's: no store dir, no log
    assert BOTH in line and "'no space left on device'" in line and "'file too large'" in line, line
    assert "ulimit -f unlimited" in line, line
    ours = unready_line("the API (pid 7)", 12.0, 10.0, FAILING, "/d/jetstream", "restart nats-server (kill 42)")
    assert "free space on the disk of nats-server's store (/d/jetstream), then restart nats-server (kill 42" in ours
    unanswered = unstored_line("NATS did not answer in time (GAMEAD_ADS)", False, 2.0)
    assert "'no space left on device'" in unanswered and "'file too large'" in unanswered, unanswered
    assert "ulimit -f unlimited" in unanswered and "free space does not help" in unanswered, unanswered
