"""What a hostile reviewer found in the CLI (task C4), each as a kind: float options, file readers, line
bounds, batch sizes, rejected lines named, ids and counts checked locally, the fault-injection line."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gamead_cli.main import app
from gamead_cli.submit.outage import pace as _pace
from gamead_core.embedded import EmbeddedNats
from tests.support import Proc, ad, clean_env, start_api

pytestmark = pytest.mark.usefixtures("isolated_env")

VALID_ID = "01m87v538ce744cfgethvyb39n"


def invoke(*args: str, input: str | None = None) -> tuple[int, str, str]:
    """``gamead ARGS`` in process: (exit code, stdout, stderr)."""
    result = CliRunner().invoke(app, list(args), input=input)
    return result.exit_code, result.stdout, result.stderr


def one_red_line(stderr: str) -> str:
    """The one ``error: …`` line a CLI error prints (no traceback, no "unexpected")."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert "unexpected" not in stderr and "Traceback" not in stderr, stderr
    return lines[0]


# --- item 1: every float option refuses inf, nan and what overflows, at parse time ----------------------

FLOATS = [
    (["submit", "--count", "10", "--rate", "inf"], "'--rate'"),  # was: unexpected OverflowError, exit 1
    (["submit", "--count", "10", "--rate", "1e-300"], "'--rate'"),  # was: timestamp out of range, exit 1
    (["submit", "--count", "10", "--rate", "nan"], "'--rate'"),
    (["submit", "--count", "10", "--rate", "-1"], "'--rate'"),
    (["submit", "--title", "x", "--genre", "rpg", "--wait", "--timeout", "inf"], "'--timeout'"),
    (["submit", "--title", "x", "--genre", "rpg", "--wait", "--timeout", "nan"], "'--timeout'"),
    (["dlq", "replay", "--all", "--rate", "inf"], "'--rate'"),
    (["dlq", "replay", "--all", "--rate", "1e-300"], "'--rate'"),
    (["dlq", "replay", "--all", "--stop-on-failure-rate", "nan"], "'--stop-on-failure-rate'"),
    (["top", "--once", "--refresh", "nan"], "'--refresh'"),
    (["top", "--once", "--refresh", "inf"], "'--refresh'"),
    (["top", "--record-max-mb", "nan"], "'--record-max-mb'"),
    (["doctor", "--settle", "inf"], "'--settle'"),
]


@pytest.mark.parametrize("args, flag", FLOATS, ids=[" ".join(a) for a, _ in FLOATS])
def test_a_float_option_refuses_inf_nan_and_overflow(args: list[str], flag: str, closed_api_url: str) -> None:
    code, _, err = invoke(*args, "--api", closed_api_url)
    assert code == 2, err
    line = one_red_line(err)  # a text that is no duration, else the one sentence of a number out of range (range46)
    name = flag.strip(chr(39))  # "--rate: cannot read …" (leftout58: Click's "Invalid value for '--rate'" before)
    assert line.startswith((f"error: {name}: ", f"error: {name} must be ")), line


def test_pacing_never_overflows_a_wait() -> None:
    stop = threading.Event()
    stop.set()
    assert _pace(stop, time.monotonic() + 1e12) is True  # Event.wait(1e12) alone raises OverflowError


# --- items 2, 3, 5: file readers: strict JSON, bounded lines, every rejected line named -----------------

def test_dlq_import_names_a_nan_line_and_exits_2(tmp_path: Path, closed_api_url: str) -> None:
    path = tmp_path / "dead.jsonl"
    path.write_text(json.dumps({"adId": VALID_ID}) + '\n{"adId": "x", "priority": NaN}\n', encoding="utf-8")
    code, _, err = invoke("dlq", "import", str(path), "--api", closed_api_url)
    assert code == 2  # was: unexpected ValueError: Out of range float values are not JSON compliant, exit 1
    assert "dead.jsonl:2: not valid JSON (NaN is not a JSON number" in one_red_line(err)


def test_dlq_import_names_a_50_mb_line_without_reading_it_whole(tmp_path: Path, closed_api_url: str) -> None:
    path = tmp_path / "dead.jsonl"
    with path.open("w", encoding="utf-8") as fh:
        fh.write(json.dumps({"adId": VALID_ID}) + "\n")
        fh.write('{"errorMessage": "' + "a" * 50_000_000 + '"}\n')
    # VmHWM: this process's peak RSS since its exec (ru_maxrss would count the forked test process's pages)
    script = ("import sys\nfrom gamead_cli.main import main\ntry:\n    main()\nfinally:\n"
              "    hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]\n"
              "    print('maxrss_kb', hwm, file=sys.stderr)\n")
    done = subprocess.run([sys.executable, "-c", script, "dlq", "import", str(path), "--api", closed_api_url],
                          capture_output=True, text=True, timeout=120, env=clean_env(), cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "dead.jsonl:2: longer than 48 KiB" in done.stderr
    rss_mb = int(done.stderr.split("maxrss_kb")[1].split()[0]) / 1024
    print(f"gamead dlq import of a 50 MB line: max RSS {rss_mb:.0f} MB (was 240 MB)")
    assert rss_mb < 150  # the line is skipped in 48 KiB reads, never held


def test_submit_ad_file_names_the_nan_line(tmp_path: Path) -> None:
    path = tmp_path / "ad.json"
    path.write_text('{"title": "x",\n "genre": "rpg",\n "duration": Infinity}\n', encoding="utf-8")
    code, _, err = invoke("submit", str(path))
    assert code == 2  # bad input (README), as dlq import and top --replay say of theirs (was 1)
    assert "ad.json:3: not valid JSON (Infinity is not a JSON number" in one_red_line(err)


def test_submit_ndjson_names_each_rejected_line_first_20_then_a_count(tmp_path: Path, closed_api_url: str) -> None:
    path = tmp_path / "bad.ndjson"
    path.write_text("".join('{"duration": NaN}\n' if i % 2 else "[1]\n" for i in range(25)), encoding="utf-8")
    code, out, err = invoke("submit", "bad.ndjson", "--api", closed_api_url)  # isolated_env: cwd is tmp_path
    assert code == 1  # nothing valid: no request sent, every line rejected and named
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines[0].startswith("bad.ndjson:1: invalid_json: a JSON array, not one JSON object (an ad): NDJSON holds")
    assert lines[1].startswith("bad.ndjson:2: invalid_json: not valid JSON (NaN is not a JSON number")
    assert len(lines) == 21 and lines[-1] == "… and 5 more rejected"
    code, out, _ = invoke("submit", "bad.ndjson", "--api", closed_api_url, "-o", "json")
    summary = json.loads(out)
    assert summary["rejectedByCode"] == {"invalid_json": 25} and summary["rejectionsNotListed"] == 5
    assert [r["where"] for r in summary["rejections"]] == [f"bad.ndjson:{n}" for n in range(1, 21)]


def test_submit_ndjson_names_a_50_mb_line_and_a_422_field(tmp_path: Path, api_url: str) -> None:
    path = tmp_path / "big.ndjson"
    with path.open("w", encoding="utf-8") as fh:
        fh.write(json.dumps(ad("Line one")) + "\n")
        fh.write(json.dumps({**ad("Huge"), "description": "d" * 50_000_000}) + "\n")
        fh.write(json.dumps({**ad("Too long"), "duration": 9999}) + "\n")
    code, out, err = invoke("submit", "big.ndjson", "--api", api_url)
    assert code == 1
    named = [line for line in err.splitlines() if line.startswith("big.ndjson:")]
    assert named[0] == "big.ndjson:2: invalid_json: longer than 64 KiB (an ad is a small JSON object)"
    assert named[1].startswith("big.ndjson:3: validation_failed: duration:"), named  # the field path
    assert "rejected" in out and "accepted" in out


# --- item 4: a batch over the API's api.batch_max is split and resent, never twice --------------------

#: (the setting made small, its value, the batch size the run goes on with: None = whatever halving gave)
SPLITS = {"api.batch_max": ("GAMEAD_API__BATCH_MAX", "7", 7),
          "api.batch_max_body_bytes": ("GAMEAD_API__BATCH_MAX_BODY_BYTES", "4096", None)}


@pytest.fixture(scope="module", params=sorted(SPLITS))
def small_batch_api(request: pytest.FixtureRequest, nats_server: EmbeddedNats,
                    tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """An API refusing batches of 20 generated ads by one setting: (its URL, the setting)."""
    variable, value, _ = SPLITS[request.param]
    proc: Proc
    proc, url = start_api(nats_server.url, tmp_path_factory.mktemp("c4-api"), **{variable: value})
    yield url, request.param
    proc.stop()


def test_submit_splits_a_batch_the_api_refuses_for_size(small_batch_api: tuple[str, str]) -> None:
    """A batch refused for its ads (422) or its bytes (413) is split and resent, and the summary names the setting
    that refused it. attack60: 1,000 ads of 13 KB each, `--batch-size 500`, went in batches of 91 and the summary
    said `(the API refused bigger: api.batch_max)`: the 413 of `api.batch_max_body_bytes` (2 MiB) had refused them,
    not the 500 ads of `api.batch_max`, so an operator raising api.batch_max changed nothing."""
    url, setting = small_batch_api
    key = f"c4-split-{time.time_ns()}"  # an ad sent twice would come back as a duplicate
    code, out, err = invoke("submit", "--count", "30", "--batch-size", "20", "--idempotency-key", key,
                            "--api", url, "-o", "json")
    assert code == 0, err  # was: every ad rejected batch_too_large, exit 1
    summary = json.loads(out)
    assert (summary["sent"], summary["accepted"], summary["duplicates"], summary["rejectedByCode"]) == (30, 30, 0, {})
    assert summary["batchSize"] == (SPLITS[setting][2] or summary["batchSize"]) < 20, summary
    assert summary["batchSizeBy"] == [setting], summary
    code, out, err = invoke("submit", "--count", "30", "--batch-size", "20", "--api", url)
    text = " ".join(out.replace("│", " ").split())  # however the panel wrapped it
    assert code == 0 and f"(the API refused bigger: {setting})" in text, text


def test_submit_help_says_a_batch_is_split() -> None:
    code, out, _ = invoke("submit", "--help")
    assert code == 0 and "split" in " ".join(out.split())


# --- item 7: ids and counts are checked locally: exit 2, one message shape -----------------------------

IDS = [
    (["ads", "get", "a.b"], "is not an ad id"),  # was 4
    (["ads", "get", ""], "is not an ad id"),  # was 4, error: Not Found
    (["ads", "get", "a" * 10_000], "is not an ad id"),  # was 1 (HTTP 414)
    (["dlq", "show", "a.b"], "is not an ad id"),
    (["dlq", "cancel", "a.b"], "is not a job id"),
    (["dlq", "jobs", "a.b"], "is not a job id"),
    (["scale", "set", "100000000"], "0 to 10,000, not 100,000,000"),  # was 1 (HTTP 422)
    (["scale", "set", "--", "-1"], "0"),
    (["dlq", "list", "--cursor", str(2**64)], "--cursor"),
    (["audit", "--cursor", str(2**64)], "--cursor"),
]


@pytest.mark.parametrize("args, says", IDS, ids=[" ".join(a)[:40] for a, _ in IDS])
def test_a_malformed_id_or_count_is_exit_2_before_any_request(args: list[str], says: str,
                                                               closed_api_url: str) -> None:
    code, _, err = invoke(*args, "--api", closed_api_url)  # no API: a request would be exit 3
    assert code == 2, err
    line = one_red_line(err)
    # "ID: 'a.b' is not an ad id …", or a number out of range in its one sentence: "--cursor must be 0 to …" (range46)
    assert (re.match(r"error: [-A-Z]+[-a-z]*: ", line) or " must be " in line) and says in line and len(line) < 400


# --- item 8: the console's fault-injection line says every worker.faults setting -----------------------

def test_the_fault_line_says_attempts() -> None:
    from gamead_cli.commands.up_console import fault_banner
    from gamead_core.config import load_settings

    from rich.text import Text

    settings = load_settings(None, worker={"faults": {"rate": 0.3, "mode": "permanent", "attempts": 2,
                                                      "match": "^[a-z]"}})
    line = fault_banner(settings)
    assert line is not None
    shown = Text.from_markup(line).plain  # what the console prints
    assert "on their first 2 attempt(s)" not in shown  # attack29a F1: the rate is per attempt, not per ad
    assert "30% of the attempts at ads whose title matches /^[a-z]/ fail on purpose (attempts 1-2 only, each " \
           "attempt drawn anew), mode permanent" in shown, shown


def test_dlq_import_names_a_line_the_api_refuses_and_exits_2(tmp_path: Path, api_url: str) -> None:
    path = tmp_path / "dead.jsonl"
    path.write_text("\n" + json.dumps({"adId": VALID_ID, "priority": 9, "attempts": 1}) + "\n", encoding="utf-8")
    code, _, err = invoke("dlq", "import", "dead.jsonl", "--api", api_url)
    assert code == 2, err  # bad input, like a line that is not JSON (was exit 1)
    line = one_red_line(err)
    # words58: pydantic's "title: Field required" before
    assert "dead.jsonl:2: title: required, not given" in line and "nothing was imported" in line, line


def test_a_unicode_digit_is_refused_not_a_crash() -> None:
    from gamead_cli.retry import retry_after_seconds
    from gamead_cli.tui.commands import CommandError, parse

    for line in ("scale ² for 10m", "level ²"):  # "²".isdigit() is True, int("²") raises ValueError
        with pytest.raises(CommandError):
            parse(line)
    assert retry_after_seconds("²", 0.0) is None


def test_a_streamed_line_is_bounded_and_strict() -> None:
    from gamead_cli.ndjson_lines import MAX_STREAM_LINE_BYTES, ndjson_lines
    from gamead_core.errors import ApiClientError

    assert list(ndjson_lines([b'{"a": 1}\n{"b"', b': 2}\n\n{"c": 3}'], "GET /x")) == [{"a": 1}, {"b": 2}, {"c": 3}]
    for chunks in ([b'{"a": NaN}\n'], [b"[1]\n"], [b"x" * 65536] * (MAX_STREAM_LINE_BYTES // 65536 + 2)):
        with pytest.raises(ApiClientError):
            list(ndjson_lines(chunks, "GET /x"))


def test_an_ad_from_flags_whose_title_has_no_letters_and_no_description_is_refused() -> None:
    """attack29c F4: `gamead submit --title "🎮 2024" --genre RPG` made up the description "🎮 2024: a RPG game." from
    the genre, so the API's no-letters rule saw the genre's letters and the ad was analysed on words never typed."""
    code, _, err = invoke("submit", "--title", "🎮 2024", "--genre", "RPG", "--api", "http://127.0.0.1:9")
    assert code == 2, err
    line = one_red_line(err)
    assert "has no letters and no --description was given" in line, line


def test_submit_ndjson_of_a_json_array_says_how_to_send_one(tmp_path: Path, closed_api_url: str) -> None:
    # a file holding one array of ads, read as NDJSON (--ndjson): the rejected line says how to send it
    (tmp_path / "ads.json").write_text('[{"title": "Star Raid", "genre": "rpg", "priority": 2}]\n', encoding="utf-8")
    code, _, err = invoke("submit", "--ndjson", "ads.json", "--api", closed_api_url)
    assert code == 1  # nothing valid: the line is rejected, nothing sent
    assert "ads.json:1: invalid_json: a JSON array, not one JSON object (an ad)" in err
    assert "sent as such when it is not read as NDJSON (named *.json, no --ndjson)" in " ".join(err.split())
