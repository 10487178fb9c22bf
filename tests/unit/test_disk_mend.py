"""When ``gamead up`` restarts its nats-server after a full disk (attack41a F1): the pure rule and its line."""

from __future__ import annotations

from pathlib import Path

from gamead_cli.commands.up_disk import low_room_words, mend_line
from gamead_core.scaling.disk_mend import (
    INODE_FLOOR,
    ROOM_FLOOR,
    DiskMend,
    inodes_needed,
    out_of_space_logged,
    room_needed,
)

MIB = 1024 * 1024
FULL = "[42] 2026/12/05 06:28:00.556758 [ERR] JetStream failed to store a msg on stream '$G > KV_gamead_ads': " \
       "write /d/jetstream/msgs/1.blk: no space left on device"


def test_a_spell_of_storage_failing_is_due_past_the_ttl_and_ends_with_a_ready_answer_not_a_silence() -> None:
    mend = DiskMend(10.0)
    assert mend.due(True, 100.0, 42) is None
    assert mend.due(True, 110.0, 42) is None  # not past the ttl
    assert mend.due(None, 115.0, 42) is None  # no answer: counted neither way
    assert mend.due(True, 110.5, 42) == 10.5
    assert mend.due(False, 111.0, 42) is None  # ready (or unready on something else): the spell ends
    assert mend.due(True, 112.0, 42) is None  # a new spell
    assert mend.due(True, 130.0, None) is None  # nats-server not running (being restarted)
    assert mend.due(True, 131.0, 42) is None and mend.due(True, 141.5, 42) == 10.5


def test_a_restart_needs_the_process_own_line_and_room_and_is_decided_once_per_process() -> None:
    mend = DiskMend(10.0)
    assert not mend.decide(42, False, 1000 * MIB, 2000 * MIB), "a store at max_file_store: no restart"
    assert not mend.decide(42, True, 1 * MIB, 30 * MIB), "still (nearly) full"
    assert mend.decide(42, True, 29 * MIB, 30 * MIB)
    mend.due(True, 0.0, 42)
    assert mend.due(True, 20.0, 42) is None, "restarted once: that process is not due again"
    assert mend.due(True, 21.0, 43) is None, "its successor has a spell of its own"
    assert mend.due(True, 40.0, 43) == 19.0, "and is due past the ttl, for a full disk of its own"


def test_only_a_line_of_the_running_process_counts() -> None:
    assert out_of_space_logged(["[7] started", FULL], 42)
    assert not out_of_space_logged([FULL], 4), "another process's line (a predecessor's, before the restart)"
    assert not out_of_space_logged([FULL.replace("no space left on device", "insufficient resources")], 42)


def test_room_is_a_tenth_of_a_small_disk_and_64_mib_of_a_large_one() -> None:
    assert room_needed(30 * MIB) == 3 * MIB
    assert room_needed(100 * 1024 * MIB) == ROOM_FLOOR == 64 * MIB


def test_the_line_names_the_process_its_log_the_store_and_the_room() -> None:
    line = mend_line(42, 23.4, Path("/d/jetstream"), 29 * MIB, 30 * MIB, Path("/d/nats-server.log"))
    assert line.startswith("nats-server (pid 42) logged 'no space left on device' (/d/nats-server.log)")
    assert "refused submits for 23s" in line and "(/d/jetstream) has room again (29.0 MiB free of 30.0 MiB)" in line
    assert "restarting nats-server (SIGTERM)" in line


def test_the_start_line_of_a_disk_with_little_room_says_what_is_free_against_what_is_wanted() -> None:
    line = low_room_words(Path("/d"), 300 * 1024, 30 * MIB)
    assert line.startswith("the disk of /d has 300.0 KiB free of 30.0 MiB, less than 3.0 MiB (a tenth of it")
    assert "every submit is refused (503) until there is room again" in line


def test_a_disk_out_of_inodes_has_no_room_whatever_its_bytes(tmp_path: Path) -> None:
    """attack41c F3: a tmpfs of 64 inodes, every one taken, 63 of 64 MiB free: nats-server logs 'no space left on
    device' (Error creating msg block file), and a restart meets it again at once. With the fix no restart is
    decided until inodes are freed; without (decide on bytes alone, up_disk.py of 84ee7137): True, restarted,
    and again for each successor past registry.ttl."""
    import subprocess

    import pytest

    from gamead_cli.commands.up_disk import store_room

    mnt = tmp_path / "disk"
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m,nr_inodes=64", "tmpfs", str(mnt)],
                          capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.decode().strip() or 'not root'})")
    try:
        made = []
        try:
            while True:
                made.append(mnt / f"f{len(made)}")
                made[-1].touch()
        except OSError:
            made.pop()
        room = store_room(mnt)
        assert room is not None and room[0] > 60 * MIB and room[2] == 0, room
        mend = DiskMend(10.0)
        assert not mend.decide(42, True, *room), "bytes free, no inode: no room"
        for path in made:
            path.unlink()
        assert mend.decide(42, True, *store_room(mnt)), "inodes freed: room"
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_inodes_needed_is_a_tenth_at_most_the_floor_and_none_where_none_are_counted() -> None:
    mend = DiskMend(10.0)
    assert inodes_needed(64) == 6 and inodes_needed(10**9) == INODE_FLOOR and inodes_needed(0) == 0
    assert not mend.decide(42, True, 29 * MIB, 30 * MIB, 5, 64)
    assert mend.decide(42, True, 29 * MIB, 30 * MIB, 0, 0), "a file system that counts no inodes: bytes alone"


def test_a_clients_words_in_the_log_are_not_a_full_disk() -> None:
    """attack41c F4: nats-server quotes a client's protocol garbage and its CONNECT name in its own [PID] [ERR]
    lines (seen on nats-server 2.x); without the fix both counted as 'no space left on device' (2 asserts fail)."""
    parser = "[42] 2026/12/05 07:42:35.653896 [ERR] 127.0.0.1:59428 - cid:5 - Client parser ERROR, state=0, i=12: " \
             "proto='\"no space left on device\\r\"...'"
    named = "[42] 2026/12/05 07:42:36.154580 [ERR] 127.0.0.1:59442 - cid:6 - \"no space left on device\" - Client " \
            "parser ERROR, state=41, i=70: proto='\"x\\r\"...'"
    assert not out_of_space_logged([parser], 42)
    assert not out_of_space_logged([named], 42)
    assert out_of_space_logged([parser, FULL], 42), "the store's own line still counts"
