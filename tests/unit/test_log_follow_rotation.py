"""review26 F10: a log rotated (``gamead up``'s copytruncate, :func:`gamead_core.log_bound.bound_log`, or a file
replaced) and then written past the follower's old offset before its next read was read from that offset: a torn
first line, the new file's head skipped. The follower now tells a file that started over by its identity (device,
inode) and its first bytes, and shows the new file from its first line, whole. ``gamead up``'s console line of a
child that died just after its log was emptied names the child's last line (in ``<name>.1``), not "no output".
No servers: files only."""

from __future__ import annotations

import json
import os
from pathlib import Path

from gamead_cli.commands.up_logs import last_log_line
from gamead_cli.tui.logs import FileTail
from gamead_core.log_bound import bound_log, rotated


def _lines(prefix: str, count: int) -> str:
    return "".join(json.dumps({"ts": "2026-12-03T08:00:00+0000", "message": f"{prefix} {n}"}) + "\n"
                   for n in range(count))


def test_a_copytruncated_log_written_past_the_old_offset_is_shown_from_its_first_line(tmp_path: Path) -> None:
    log = tmp_path / "worker-1.log"
    log.write_text(_lines("old", 20), encoding="utf-8")
    tail = FileTail(log)
    assert len(tail.read()) == 20
    old_offset = tail.offset
    assert bound_log(log, limit=10)  # copied to worker-1.log.1, emptied in place: the child writes on
    with open(log, "a", encoding="utf-8") as out:  # the child's burst, past the old offset, before the next read
        out.write(_lines("new line number", 40))
    assert old_offset is not None and log.stat().st_size > old_offset
    shown = tail.read()
    assert shown[0] == json.dumps({"ts": "2026-12-03T08:00:00+0000", "message": "new line number 0"}), shown[:2]
    assert len(shown) == 40 and all("old" not in line for line in shown)
    with open(log, "a", encoding="utf-8") as out:
        out.write(_lines("after", 1))
    assert [json.loads(line)["message"] for line in tail.read()] == ["after 0"]  # then only what is appended


def _replaced(tmp_path: Path, first: str, then: str) -> tuple[Path, FileTail, int]:
    """``api.log`` holding ``first``, read whole by a follower, then replaced (``os.replace``: another inode) by a
    file holding ``then``; the log, its follower and the old inode."""
    log = tmp_path / "api.log"
    log.write_text(first, encoding="utf-8")
    tail = FileTail(log)
    assert len(tail.read()) == first.count("\n")
    fresh = tmp_path / "api.log.new"
    fresh.write_text(then, encoding="utf-8")
    before = log.stat().st_ino
    os.replace(fresh, log)
    return log, tail, before


def test_a_replaced_log_longer_than_the_old_offset_is_shown_from_its_first_line(tmp_path: Path) -> None:
    # another inode, whose first bytes differ only in a word
    _, tail, _ = _replaced(tmp_path, _lines("old", 5), _lines("old", 5).replace("old", "new") + _lines("more", 5))
    shown = [json.loads(line)["message"] for line in tail.read()]
    assert shown[:2] == ["new 0", "new 1"] and len(shown) == 10, shown


def test_a_log_replaced_by_one_with_the_same_first_bytes_is_shown_from_its_first_line(tmp_path: Path) -> None:
    """Only the identity (device, inode) tells this one: the new file starts with the old one's every byte."""
    # the new file is written past the old offset
    log, tail, before = _replaced(tmp_path, _lines("same", 5), _lines("same", 5) + _lines("more", 5))
    assert log.stat().st_ino != before and log.read_bytes().startswith(_lines("same", 5).encode())
    shown = [json.loads(line)["message"] for line in tail.read()]
    assert shown == [f"same {n}" for n in range(5)] + [f"more {n}" for n in range(5)], shown


def test_a_log_emptied_just_before_its_child_died_names_the_last_line_of_its_copy(tmp_path: Path) -> None:
    log = tmp_path / "worker-1.log"
    log.write_text("starting\nerror: the last words\n", encoding="utf-8")
    assert bound_log(log, limit=4)
    assert log.stat().st_size == 0 and rotated(log).is_file()
    assert last_log_line(log) == "error: the last words"  # was "" ("no output")
