"""input40 (attack40a F3, F4, F5): an input file's reading costs a C pass over its bytes, not a Python step a line;
a stop while it is read says what README says; a FIFO's hint names the verb in use; the progress bar's total grows
with a file appended while it is read.

Figures: 10,000,000 ``\\n`` then one ad kept ``gamead submit`` at 100 % CPU for 51 s before it sent anything (two
Python steps a blank line: the count, then the read); Ctrl-C while it read said only ``error: interrupted``;
``gamead dlq import FIFO`` said ``… | gamead submit -``; 1,000 ads with 2,000 appended showed ``3000/1000``."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import uuid
from pathlib import Path
from typing import Any

import httpx

from gamead_cli.blank_lines import COUNT_BLOCK, count_holding
from gamead_cli.inputs import bounded_lines
from tests.forked_popen import GameadPopen
from tests.support import ad, clean_env, gamead_argv, killed_if_left, run_gamead, sigint_reaches_it, wait_for

AD = json.dumps(ad("Blank Runs")).encode()
BLANK_LINES = 10_000_000


class Counted:
    """A binary reader that counts the calls made to it (each one a Python step of the reader's loop)."""

    def __init__(self, fh: Any) -> None:
        self.fh, self.calls = fh, 0

    def readline(self, size: int = -1) -> bytes:
        self.calls += 1
        return self.fh.readline(size)

    def peek(self, size: int = 0) -> bytes:
        self.calls += 1
        return self.fh.peek(size)

    def read(self, size: int = -1) -> bytes:
        self.calls += 1
        return self.fh.read(size)


def _blank_file(tmp_path: Path) -> Path:
    path = tmp_path / "blank.ndjson"
    path.write_bytes(b"\n" * BLANK_LINES + AD + b"\n")
    return path


def test_ten_million_blank_lines_are_passed_a_buffer_at_a_time(tmp_path: Path) -> None:
    """The figure: 10,000,000 blank lines then an ad. The ad comes labelled with its true line (10,000,001) after
    at most 10,000 reads of the file's buffer (before: 10,000,001 readline calls, ~25 s of CPU)."""
    with _blank_file(tmp_path).open("rb") as raw:
        fh = Counted(raw)
        got = list(bounded_lines(fh, 64 * 1024, skip_blank=True))  # type: ignore[arg-type]
    assert got == [(BLANK_LINES + 1, AD + b"\n")]
    assert fh.calls <= BLANK_LINES // 1000, fh.calls  # a buffer (4-64 KiB) a step, not a line


def test_line_numbers_stay_right_across_mixed_blank_runs() -> None:
    """What the bulk skip must keep (README: FILE:LINE): blank runs of every kind (CRLF, spaces, tabs, form feeds,
    runs across buffer ends, buffers of 16 B and 8 KiB) between ads, each ad keeps its line number and a whitespace
    line over the bound is still named too long, as a line-by-line read names them."""
    lines = [b"{}", *[b"\r", b"  ", b"\t\x0c", b""] * 5000, b"{}", b" " * 200, b"", b"{}", *[b""] * 70_000, b"{}"]
    data = b"\n".join(lines) + b"\n"
    want = [(n, line + b"\n" if line.strip() else None) for n, line in enumerate(lines, 1)
            if line.strip() or len(line) > 100]
    for size in (16, 8192):
        got = list(bounded_lines(io.BufferedReader(io.BytesIO(data), buffer_size=size), 100, skip_blank=True))
        assert got == want, size
    # the count by bytes: the 4 ads (the whitespace line over the bound is blank to it: the bar's total grows past)
    assert count_holding(io.BytesIO(data), block=7) == 4


def test_the_count_before_the_first_send_reads_blocks_not_lines(tmp_path: Path) -> None:
    """``gamead submit FILE`` counts the ads first: 10,000,000 blank lines and an ad are 1, read in blocks."""
    with _blank_file(tmp_path).open("rb") as raw:
        fh = Counted(raw)
        assert count_holding(fh) == 1
    assert fh.calls <= BLANK_LINES // COUNT_BLOCK + 2, fh.calls


def test_ctrl_c_while_the_input_is_read_before_any_ad_says_nothing_was_sent() -> None:
    """Blank lines piped in and no ad yet (the stream open): Ctrl-C said only ``error: interrupted``; README says
    ``nothing was sent``. 1 MB written whole (the write returns once the CLI has read most of it: reading)."""
    cli = GameadPopen(gamead_argv("submit", "--ndjson", "-", "--api", "http://127.0.0.1:25501", "-o", "json"),
                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                      env=clean_env(), preexec_fn=sigint_reaches_it)
    with killed_if_left(cli):
        assert cli.stdin is not None
        cli.stdin.write("\n" * 1_000_000)
        cli.stdin.flush()
        cli.send_signal(signal.SIGINT)
        out, err = cli.communicate(timeout=60)
    assert cli.returncode == 130, (out, err)
    assert err.strip().splitlines()[-1] == "error: interrupted (Ctrl-C): nothing was sent", err
    assert json.loads(out)["error"]["message"] == "interrupted (Ctrl-C): nothing was sent", out


def _reading_stdin(pid: int) -> bool:
    """The process's main thread is blocked in ``read(0, …)`` (``/proc/PID/syscall``: read is 0 on Linux)."""
    try:
        return Path(f"/proc/{pid}/syscall").read_text().split()[:2] == ["0", "0x0"]
    except OSError:
        return False


def test_sigterm_while_one_ad_is_read_from_stdin_says_it_was_reading_it() -> None:
    """``(echo '{"title":"x",'; sleep 100) | gamead submit -`` then SIGTERM: the command had started and was
    reading stdin, yet said ``interrupted (SIGTERM) while gamead submit was starting: nothing was sent``. Now
    ``… while reading stdin: nothing was sent``, exit 143 as before (leftovers56)."""
    cli = GameadPopen(gamead_argv("submit", "-", "--api", "http://127.0.0.1:25501"), stdin=subprocess.PIPE,
                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_env())
    with killed_if_left(cli):
        assert cli.stdin is not None
        cli.stdin.write('{"title":"x",\n')
        cli.stdin.flush()  # the writer stays: stdin open, the ad unfinished
        wait_for(lambda: _reading_stdin(cli.pid), timeout=60, what="gamead submit to wait on stdin")
        cli.send_signal(signal.SIGTERM)
        out, err = cli.communicate(timeout=60)
    assert (cli.returncode, out) == (143, ""), err
    assert err.strip().splitlines() == ["error: interrupted (SIGTERM) while reading stdin: nothing was sent"], err


def test_a_fifo_given_to_dlq_import_is_told_to_pipe_it_to_dlq_import(tmp_path: Path) -> None:
    """``gamead dlq import FIFO``'s hint named ``gamead submit -``: it names ``gamead dlq import -``."""
    os.mkfifo(tmp_path / "dead.jsonl")
    run = run_gamead("dlq", "import", "dead.jsonl", "--api", "http://127.0.0.1:25501", env=clean_env(),
                     cwd=tmp_path)
    assert run.returncode == 2, run.stderr
    assert "gamead dlq import -" in run.stderr and "gamead submit" not in run.stderr, run.stderr


def _queued(api_url: str, tag: str) -> int:
    items = httpx.get(f"{api_url}/ads", params={"limit": 500}, timeout=10).json()["items"]
    return sum(tag in item["ad"]["title"] for item in items)


#: ads in the file as counted, then appended once the first is queued, and the pace (``--rate``, ads a second)
COUNTED, APPENDED, RATE = 20, 3, 2


def test_the_bars_total_grows_with_a_file_appended_while_it_is_read(api_url: str, tmp_path: Path) -> None:
    """20 ads counted, 3 appended once the first is queued: the bar ended ``23/20``; it ends ``23/23``.
    (``TTY_COMPATIBLE=1``: rich draws the bar on the captured stderr.)

    The premise: the append lands before the CLI reads the file's end, which it does right after handing out the
    last ad counted, at that ad's turn (``(COUNTED - 1) / RATE`` = 9.5 s after the first); the first ad queued is
    what says the count is done. Was 2 counted at ``--rate 0.5``: the end was read 2 s after the first ad went out,
    and at load ~33 the first ad's answer and the poll that saw it took longer (flake54: 2 queued, rc 0; an append
    made after the end was read gives just that: sent 2, accepted 2, the bar 2/2, nothing lost: a file is read to
    its end once). The check that the premise held: the last ad counted not yet queued once appended."""
    tag = f"Grown {uuid.uuid4().hex[:8]}"
    path = tmp_path / "grow.ndjson"
    path.write_bytes(b"".join(json.dumps(ad(f"{tag} {i}")).encode() + b"\n" for i in range(COUNTED)))
    cli = GameadPopen(gamead_argv("submit", "grow.ndjson", "--rate", str(RATE), "--api", api_url),
                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                      env=clean_env(TTY_COMPATIBLE="1", COLUMNS="150"))
    with killed_if_left(cli):
        wait_for(lambda: _queued(api_url, tag) >= 1, timeout=30, what="the first ad queued")
        with path.open("ab") as fh:
            fh.write(b"".join(json.dumps(ad(f"{tag} {i}")).encode() + b"\n"
                              for i in range(COUNTED, COUNTED + APPENDED)))
        before_end = _queued(api_url, tag) < COUNTED  # the last ad counted not yet queued once appended
        out, err = cli.communicate(timeout=120)
    assert cli.returncode == 0, (out[-500:], err[-2000:])
    assert before_end, "premise missed: every ad counted was queued before the append landed (not a product fault)"
    assert _queued(api_url, tag) == COUNTED + APPENDED
    shown = [(int(done), int(total)) for done, total in re.findall(r"(\d+)/(\d+)", err)]
    assert (COUNTED + APPENDED,) * 2 in shown and all(done <= total for done, total in shown), shown
