"""attack27 F5: what `gamead dlq export` keeps of an ad met twice (gamead_cli.once_per_ad), and the filtering of its
temporary file before it replaces FILE (gamead_cli.atomic.PendingFile.drop_lines)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gamead_cli.atomic import PendingFile
from gamead_cli.once_per_ad import OncePerAd


def test_a_file_keeps_each_ads_last_line_and_a_stream_its_first() -> None:
    order = ["a", "b", "a", "c", "a"]
    file = OncePerAd(take_back=True)
    assert [file.add(ad) for ad in order] == [True] * 5
    assert (file.dropped, file.changed, file.kept) == ({0, 2}, 1, 3)  # lines 0 and 2: a's older entries
    stream = OncePerAd(take_back=False)
    assert [stream.add(ad) for ad in order] == [True, True, False, True, False]
    assert (stream.dropped, stream.changed, stream.kept) == (set(), 1, 3)


def test_dropped_lines_leave_the_file_before_it_replaces_the_old_one(tmp_path: Path) -> None:
    target = tmp_path / "dead.jsonl"
    target.write_text("old\n")
    pending = PendingFile(target)
    lines = [f'{{"adId":"{n:026d}","pad":"{"x" * (n % 97)}"}}\n' for n in range(40_000)]  # past any read buffer
    pending.file.writelines(lines)
    dropped = {n for n in range(40_000) if n % 3 == 0}
    pending.drop_lines(dropped)
    assert target.read_text() == "old\n"  # not before the commit
    pending.commit()
    assert target.read_text() == "".join(line for n, line in enumerate(lines) if n not in dropped)
    assert list(tmp_path.iterdir()) == [target]  # no temporary file left


def test_lines_sent_to_a_device_cannot_be_taken_back(tmp_path: Path) -> None:
    pending = PendingFile("/dev/null")
    pending.file.write("line\n")
    with pytest.raises(ValueError, match="cannot be taken back"):
        pending.drop_lines({0})
    pending.commit()
