"""files14 (attack14a): every input file is read with bounded memory and stops at its first fault.

``gamead submit --ndjson /dev/zero`` ran for ever, ``gamead top --replay /dev/urandom`` grew to 1.6 GB, ``gamead
dlq import`` of a million ad lines grew past 1.2 GB before saying anything, and a 1 GB first line was read whole
before "longer than 64 KiB". Now one reader (:mod:`gamead_cli.inputs`) refuses what is not a regular file before
a byte is read, yields a too-long line once its limit is passed, and each command stops at its first bad line.

"Stopped early" is shown without timing: by input whose tail never comes (a pipe kept open, a 1 TiB hole of a
sparse file that no reader gets through) or whose tail is poisoned (a later line that would be refused with
another message). The subprocess timeouts are deadlines for a hang, never the assertion.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from pathlib import Path

import pytest

from gamead_cli import exitcodes
from gamead_cli.inputs import bounded_lines
from tests.cli.test_cli_errors import gamead, one_red_line
from tests.forked_popen import GameadPopen
from tests.support import clean_env, gamead_argv

TIB = 1 << 40
AD = {"title": "Summer Sale", "genre": "puzzle", "callToAction": "Play now", "duration": 30}
DEVICES = ["/dev/zero", "/dev/urandom"]
READERS = {  # how each command reads FILE
    "submit --ndjson": ["submit", "--ndjson", "{file}"],
    "submit": ["submit", "{file}"],
    "dlq import": ["dlq", "import", "{file}"],
    "top --replay": ["top", "--replay", "{file}", "--once"],
}


def _args(reader: str, file: str, api: str) -> list[str]:
    args = [a.replace("{file}", file) for a in READERS[reader]]
    return args if reader.startswith("top") else [*args, "--api", api]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("reader", list(READERS))
def test_a_device_is_refused_before_it_is_read(tmp_path: Path, closed_api_url: str, reader: str,
                                               device: str) -> None:
    """Each ran for ever or grew without bound (``/dev/urandom`` under ``top --replay``: 1.6 GB); refused as
    ``--config`` refuses it."""
    result = gamead(*_args(reader, device, closed_api_url), cwd=tmp_path, timeout=60)
    assert result.returncode == exitcodes.USAGE, result.stderr
    one_red_line(result, f"{device}: is not a regular file (a device")


@pytest.mark.parametrize("reader", list(READERS))
def test_a_fifo_without_writer_is_refused_not_waited_on(tmp_path: Path, closed_api_url: str, reader: str) -> None:
    os.mkfifo(tmp_path / "ads.ndjson")
    result = gamead(*_args(reader, "ads.ndjson", closed_api_url), cwd=tmp_path, timeout=60)
    assert result.returncode == exitcodes.USAGE, result.stderr
    one_red_line(result, "ads.ndjson: is not a regular file (a FIFO")


def _sparse(path: Path, head: bytes) -> Path:
    """``head`` followed by a 1 TiB hole (NUL bytes, no disk): a reader that goes past ``head`` never ends."""
    path.write_bytes(head)
    os.truncate(path, TIB)
    return path


def test_submit_refuses_a_long_first_line_at_its_limit(tmp_path: Path, closed_api_url: str) -> None:
    """A 1 GB sparse file took 20 s (the count for the progress bar, then the line, read whole first)."""
    _sparse(tmp_path / "ads.ndjson", b"x" * 70_000)
    result = gamead("submit", "ads.ndjson", "--api", closed_api_url, cwd=tmp_path, timeout=120)
    assert result.returncode == exitcodes.USAGE, result.stderr
    one_red_line(result, "ads.ndjson:1: longer than 64 KiB")


def test_submit_of_a_valid_line_then_a_terabyte_hole_ends_and_names_where_it_stopped(
        tmp_path: Path, closed_api_url: str) -> None:
    """review14b: a valid line 1, then a 1 TiB sparse hole: `gamead submit` counted the whole file for its progress
    bar (and would then skip the hole as one long line) before sending anything; still running at 25 s. Now a file
    over COUNT_MAX_BYTES is not counted and a long line is skipped no further than 64 MiB: the run ends (here at the
    closed API: exit 3, a JSON error document)."""
    _sparse(tmp_path / "ads.ndjson", (json.dumps(AD) + "\n").encode())
    result = gamead("submit", "ads.ndjson", "--api", closed_api_url, "-o", "json", cwd=tmp_path, timeout=120)
    assert result.returncode == exitcodes.UNREACHABLE, result.stderr
    assert json.loads(result.stdout)["error"]["code"] == "api_unreachable"


def test_top_replay_refuses_a_first_line_that_is_not_a_recording_at_once(tmp_path: Path) -> None:
    """``million.ndjson`` (175 MB of ads) was read whole before its line 1 was refused."""
    _sparse(tmp_path / "ads.ndjson", (json.dumps(AD) + "\n").encode())
    result = gamead("top", "--replay", "ads.ndjson", "--once", cwd=tmp_path, timeout=120)
    assert result.returncode == exitcodes.USAGE, result.stderr
    one_red_line(result, "ads.ndjson:1: not a gamead top recording (a JSON object without a snapshot")


def test_dlq_import_of_a_file_of_ads_stops_at_line_1(tmp_path: Path, closed_api_url: str) -> None:
    """A file of ads (not DLQ entries) under the 256 MiB cap was read whole into memory (1.2 GB for a million
    lines) before anything was said. ~17 MB of ads with a poisoned last line (not UTF-8): a reader that got
    there would name line 100,001."""
    path = tmp_path / "million.ndjson"
    with path.open("wb") as fh:
        line = (json.dumps({**AD, "description": "d" * 100}) + "\n").encode()
        fh.write(line * 100_000)
        fh.write(b"\xff\xfe not UTF-8\n")
    assert path.stat().st_size > 15_000_000
    result = gamead("dlq", "import", "million.ndjson", "--api", closed_api_url, cwd=tmp_path, timeout=120)
    assert result.returncode == exitcodes.USAGE, result.stderr
    one_red_line(result, "million.ndjson:1: not a DLQ entry (no adId")


def _piped(args: list[str], head: bytes, cwd: Path) -> tuple[int, str]:
    """Run gamead with ``head`` on a stdin pipe that is never closed while it runs (its tail never comes):
    (exit code, stderr). A reader that waits for the end of the stream hangs until the deadline (a failure)."""
    proc = GameadPopen(gamead_argv(*args), env=clean_env(), cwd=cwd, stdin=subprocess.PIPE,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stdin is not None and proc.stderr is not None

    def feed() -> None:
        try:
            proc.stdin.write(head)  # type: ignore[union-attr]
            proc.stdin.flush()  # type: ignore[union-attr]
        except (BrokenPipeError, ValueError):
            pass  # the command stopped reading (and exited) before it took everything: what we expect

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    try:
        code = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        writer.join(timeout=10)
        try:
            proc.stdin.close() if not proc.stdin.closed else None
        except BrokenPipeError:  # what the writer could not flush: the command stopped reading, as expected
            pass
    return code, proc.stderr.read().decode("utf-8", "replace")


def test_submit_ndjson_on_a_stream_refuses_a_long_line_without_its_end(tmp_path: Path, closed_api_url: str) -> None:
    code, err = _piped(["submit", "--ndjson", "-", "--api", closed_api_url], b"x" * 200_000, tmp_path)
    assert code == exitcodes.USAGE, err
    assert "stdin:1: longer than 64 KiB" in err, err


def test_dlq_import_on_a_stream_refuses_line_1_without_the_rest(tmp_path: Path, closed_api_url: str) -> None:
    """The stream was read to its end (into memory) before any line was judged."""
    code, err = _piped(["dlq", "import", "-", "--api", closed_api_url], (json.dumps(AD) + "\n").encode() * 10,
                       tmp_path)
    assert code == exitcodes.USAGE, err
    assert "stdin:1: not a DLQ entry (no adId" in err, err


def test_top_replay_refuses_a_piped_stdin(tmp_path: Path) -> None:
    """A replay reads its file twice (index, then frames): a pipe cannot be, and is refused at once."""
    code, err = _piped(["top", "--replay", "-", "--once"], b'{"v":1,"at":1,"snapshot":{}}\n', tmp_path)
    assert code == exitcodes.USAGE, err
    assert "stdin: must be a file" in err, err


class _Poisoned:
    """A binary file whose first ``size`` bytes hold no newline and whose rest must never be read."""

    def __init__(self, size: int) -> None:
        self.left = size

    def readline(self, limit: int = -1) -> bytes:
        assert self.left > 0, "read past the limit of a line already refused"
        n = min(self.left, limit)
        self.left -= n
        return b"x" * n


def test_bounded_lines_yields_a_long_line_before_reading_its_rest() -> None:
    lines = bounded_lines(_Poisoned(10), 4)  # type: ignore[arg-type]
    assert next(lines) == (1, None)  # one read of limit + 1 bytes, no more
