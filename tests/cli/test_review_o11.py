"""Reviewer V10's CLI findings N4, N5, N6, N9, N10: each refusal is one clear red line with the README's exit
code, and every figure printed says what it is. The commands run as a user runs them (a subprocess of the real
``gamead``; a real API when the behaviour needs one)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from gamead_cli import exitcodes
from tests.support import clean_env, run_gamead

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
AD = {"title": "Sky Saga", "description": "An epic RPG.", "genre": "RPG", "callToAction": "Play", "duration": 30}


def gamead(*args: str, cwd: Path, timeout: float = 60, **env: str) -> subprocess.CompletedProcess[str]:
    return run_gamead(*args, env=clean_env(**env), cwd=cwd, timeout=timeout, errors="replace")


def red_line(result: subprocess.CompletedProcess[str]) -> str:
    """stderr's one ``error: …`` line (and no traceback)."""
    lines = _ANSI.sub("", result.stderr).strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    return lines[0]


# --- N4: a UTF-16 (or UTF-32) file is refused the same clear way, whether it holds one ad or one a line -------

WIDE = ["utf-16", "utf-16-le", "utf-16-be", "utf-32"]


@pytest.mark.parametrize("encoding", WIDE)
@pytest.mark.parametrize("name", ["ad.json", "ads.ndjson"])
def test_a_file_that_is_not_utf8_is_refused_whole_naming_it(tmp_path: Path, closed_api_url: str, name: str,
                                                           encoding: str) -> None:
    """Nothing is sent (the API's port is closed: an attempt would say "cannot reach"), one line names the file
    and says it must be UTF-8 — no Python codec text, no line counted as rejected."""
    (tmp_path / name).write_bytes((json.dumps(AD) + "\n" + json.dumps(AD) + "\n").encode(encoding)
                                  if name.endswith("ndjson") else json.dumps(AD).encode(encoding))
    result = gamead("submit", name, "--api", closed_api_url, cwd=tmp_path)
    line = red_line(result)
    assert result.returncode == exitcodes.USAGE, result.stderr  # bad input, as every input file (was 1; ops12a)
    assert f"{name}:1: not UTF-8 text (byte " in line and "save it as UTF-8" in line, line
    assert "codec" not in line and "invalid_json" not in line, line


@pytest.mark.parametrize("encoding", WIDE)
def test_json_and_ndjson_say_the_same_of_the_same_bytes(tmp_path: Path, closed_api_url: str, encoding: str) -> None:
    data = (json.dumps(AD) + "\n").encode(encoding)
    lines = []
    for name in ("same.json", "same.ndjson"):
        (tmp_path / name).write_bytes(data)
        lines.append(red_line(gamead("submit", name, "--api", closed_api_url, cwd=tmp_path)).replace(name, "F"))
    assert lines[0] == lines[1]


def test_a_later_line_not_utf8_is_that_line_rejected(tmp_path: Path, api_url: str) -> None:
    """A UTF-8 file with one Latin-1 line: that line is named and rejected in words, the others are sent."""
    (tmp_path / "mixed.ndjson").write_bytes(json.dumps(AD).encode() + b"\n"
                                            + '{"title": "Caf\xe9"}\n'.encode("latin-1"))
    result = gamead("submit", "mixed.ndjson", "--api", api_url, "-o", "json", cwd=tmp_path)
    assert result.returncode == exitcodes.ERROR, result.stderr
    items = json.loads(result.stdout)["items"]
    assert [i["outcome"] for i in items] == ["accepted", "rejected"], items
    assert items[1]["message"] == "not UTF-8 text (byte 14): save the file as UTF-8", items[1]


def test_a_utf8_bom_stays_accepted(tmp_path: Path, api_url: str) -> None:
    """Windows editors write a UTF-8 byte-order mark: NDJSON took it before, an ad file now takes it too."""
    (tmp_path / "bom.ndjson").write_bytes((json.dumps(AD) + "\n").encode("utf-8-sig"))
    (tmp_path / "bom.json").write_bytes(json.dumps(AD).encode("utf-8-sig"))
    for name in ("bom.ndjson", "bom.json"):
        result = gamead("submit", name, "--api", api_url, cwd=tmp_path)
        assert result.returncode == exitcodes.OK, (name, result.stderr)


# --- N5: a --message the API would refuse is bad usage (exit 2), before any request -----------------------------


@pytest.mark.parametrize(
    "args",
    [["replay", "--yes"], ["purge", "--yes"], ["list"], ["export"], ["replay", "--dry-run"]],
    ids=["replay", "purge", "list", "export", "dry-run"],
)
@pytest.mark.parametrize("pattern", ["(((", "(?<=x)y", "x" * 1001], ids=["unbalanced", "look-behind", "too-long"])
def test_a_bad_message_pattern_is_bad_usage_before_any_request(tmp_path: Path, closed_api_url: str,
                                                             args: list[str], pattern: str) -> None:
    """The API's port is closed: had a request gone out, the exit would be 3 ("cannot reach")."""
    result = gamead("dlq", *args, "--message", pattern, "--api", closed_api_url, cwd=tmp_path)
    line = red_line(result)
    assert result.returncode == exitcodes.USAGE, result.stderr
    assert "--message" in line and ("RE2" in line or "limit is 1,000" in line), line


def test_a_good_message_pattern_goes_to_the_api_and_imports_no_server_stack(tmp_path: Path,
                                                                          closed_api_url: str) -> None:
    from tests.cli.test_cli_errors import HEAVY, imported_modules

    result = gamead("dlq", "list", "--message", "time(out)?", "--api", closed_api_url, cwd=tmp_path)
    assert result.returncode == exitcodes.UNREACHABLE, result.stderr
    names = imported_modules("dlq", "list", "--message", "time(out)?", "--api", closed_api_url, cwd=tmp_path)
    assert not names & set(HEAVY), sorted(names & set(HEAVY))


# --- N6: `gamead top --once` explains exactly the columns it shows, at any width -------------------------------

RECORDED = Path(__file__).resolve().parents[1] / "tui" / "data" / "recorded.json"
#: columns whose label says it all: the legend does not explain them
PLAIN = {"ID", "ROLE", "STATE", "P"}


def _recording(tmp_path: Path) -> Path:
    from gamead_cli.tui.recording import Recorder
    from gamead_cli.tui.source import fetch_snapshot
    from gamead_cli.tui.source_recorded import RecordedSource

    path = tmp_path / "incident.jsonl"
    rec = Recorder(path)
    assert rec.write(fetch_snapshot(RecordedSource(json.loads(RECORDED.read_text(encoding="utf-8"))), 300), at=1.0)
    rec.close()
    return path


def _table_and_legend(lines: list[str], is_header, is_row) -> tuple[set[str], set[str]]:  # noqa: ANN001
    """The labels a table's header line shows and those its legend (the lines after its rows, up to a blank
    line) explains, as ``LABEL: meaning`` entries joined by `` · ``."""
    at = next(i for i, line in enumerate(lines) if is_header(line))
    shown = set(re.split(r"\s{2,}", lines[at].strip()))
    end = at + 1
    while is_row(lines[end]):
        end += 1
    legend: list[str] = []
    while lines[end].strip():
        legend.append(lines[end].strip())
        end += 1
    entries = " ".join(legend).split(" · ")
    assert all(": " in e for e in entries), legend
    return shown, {e.split(": ", 1)[0] for e in entries}


@pytest.mark.parametrize("width", [60, 80, 100, 120, 200])
def test_top_once_legends_name_exactly_the_columns_shown(tmp_path: Path, width: int) -> None:
    result = gamead("top", "--replay", str(_recording(tmp_path)), "--once", cwd=tmp_path, COLUMNS=str(width))
    assert result.returncode == exitcodes.OK, result.stderr
    lines = [line.rstrip() for line in _ANSI.sub("", result.stdout).splitlines()]
    for is_header, is_row in (
        (lambda s: s.startswith("P ") and "PENDING" in s, lambda s: re.match(r"P\d ", s) is not None),
        (lambda s: s.startswith("ID ") and " STATE " in s, lambda s: s.startswith(("api-", "worker-"))),
    ):
        shown, explained = _table_and_legend(lines, is_header, is_row)
        assert explained <= shown, (width, explained - shown)  # the finding: PROC P95 told, not shown
        told = {c for c in shown if c not in PLAIN and not c.startswith("PENDING, LAST")}
        assert told <= explained, (width, told - explained)


# --- N9: a 503 is one sentence, its code in brackets, the wait said once --------------------------------------


@pytest.mark.parametrize("args", [["ads", "list"], ["submit", "--title", "Sky", "--genre", "RPG"],
                                  ["dlq", "list"]], ids=["ads-list", "submit", "dlq-list"])
def test_a_503_says_what_happened_and_the_wait_once(tmp_path: Path, api_without_nats: str, args: list[str]) -> None:
    """Was: "…; retry after the time in Retry-After [queue_unavailable, HTTP 503]; retry after 2s", and "the
    queue is unavailable" for `ads list`, which reads records."""
    result = gamead(*args, "--api", api_without_nats, cwd=tmp_path, GAMEAD_CLIENT__RETRY_FOR="0")
    line = red_line(result)
    assert result.returncode == exitcodes.UNREACHABLE, result.stderr
    assert re.fullmatch(r"error: [^\[\];]+ \[queue_unavailable\]; try again in \d+(\.\d)?m?s", line), line
    assert "the queue" not in line and "Retry-After" not in line and "HTTP" not in line, line
    assert "NATS" in line, line


# --- N10: giving up on NATS says the real time it took and "1 attempt" ----------------------------------------


def test_give_up_after_prints_the_real_elapsed_time_and_counts_attempts_in_words(tmp_path: Path,
                                                                                closed_api_url: str) -> None:
    """Was "gave up after 1 s and 1 attempt(s)" for --give-up-after 0.001: the figure rounded, "(s)". Nothing
    listens at the NATS URL (a closed port), so the first attempt fails at once and is the last."""
    nats_url = closed_api_url.replace("http://", "nats://")
    result = gamead("worker", "--give-up-after", "0.001", cwd=tmp_path, GAMEAD_NATS__URL=nats_url,
                    GAMEAD_NATS__CONNECT_TIMEOUT="0.5")
    assert result.returncode == exitcodes.UNREACHABLE, result.stderr
    line = red_line(result)
    found = re.search(r"gave up after (\d+ms|\d+\.\ds) and (\d+) attempts? \(nats\.give_up_after 1ms\)$", line)
    assert found, line
    attempts = int(found[2])
    assert found[0].count(" attempts ") == (attempts != 1), line  # "1 attempt", "2 attempts"


@pytest.mark.parametrize("encoding", WIDE)
def test_dlq_import_of_a_wide_file_names_its_line_and_utf8(tmp_path: Path, closed_api_url: str,
                                                           encoding: str) -> None:
    """`gamead dlq import` reads through the same decoder: a BOM-less UTF-16 file was "not a JSON line
    (Expecting property name … at column 2)"; exit 2 before any request (the API's port is closed)."""
    (tmp_path / "dead.jsonl").write_bytes(b'{"adId": "x"}\n'.decode().encode(encoding))
    result = gamead("dlq", "import", "dead.jsonl", "--api", closed_api_url, cwd=tmp_path)
    assert result.returncode == exitcodes.USAGE, result.stderr
    assert "dead.jsonl:1: not UTF-8 text (byte " in red_line(result)


def test_dlq_import_reads_past_a_utf8_bom(tmp_path: Path) -> None:
    from gamead_cli.commands.dlq_transfer import read_entries

    (tmp_path / "dead.jsonl").write_bytes('{"adId": "x"}\n{"adId": "y"}\n'.encode("utf-8-sig"))
    assert read_entries(str(tmp_path / "dead.jsonl")) == [(1, {"adId": "x"}), (2, {"adId": "y"})]
