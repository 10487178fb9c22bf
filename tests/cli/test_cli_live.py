"""The CLI against a running API and worker (``api_url`` comes from ``tests/conftest.py``)."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner, Result

from gamead_cli import exitcodes
from gamead_cli.main import app
from gamead_cli.program import gamead_program

from tests.support import RPG_AD

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def unstyle(text: str) -> str:
    return _ANSI.sub("", text)


pytestmark = pytest.mark.usefixtures("isolated_env")

AD = RPG_AD


def run(runner: CliRunner, api_url: str, *args: str, input: str | None = None) -> Result:
    return runner.invoke(app, [*args, "--api", api_url], input=input)


def run_json(runner: CliRunner, api_url: str, *args: str, input: str | None = None, code: int = 0) -> Any:
    result = run(runner, api_url, *args, "-o", "json", input=input)
    assert result.exit_code == code, result.output
    return json.loads(result.stdout)  # stdout holds nothing but the JSON document


@pytest.fixture
def ad_file(tmp_path: Path) -> Path:
    path = tmp_path / "ad.json"
    path.write_text(json.dumps(AD), encoding="utf-8")
    return path


def test_submit_file_returns_the_202_body(runner: CliRunner, api_url: str, ad_file: Path) -> None:
    body = run_json(runner, api_url, "submit", str(ad_file))
    assert body["status"] == "queued"
    assert body["priority"] == 2
    assert body["duplicate"] is False
    assert body["id"] and body["submittedAt"]


def test_submit_table_output_names_the_id(runner: CliRunner, api_url: str, ad_file: Path) -> None:
    result = run(runner, api_url, "submit", str(ad_file))
    assert result.exit_code == 0, result.output
    assert "accepted ad" in result.stdout
    # the printed next command reaches the same API verbatim: it carries the --api this one was given (a
    # newcomer pasted `gamead ads get ID` and got exit 3 from the default 127.0.0.1:8080)
    ad_id = re.search(r"accepted ad (\S+)", result.stdout)[1]  # type: ignore[index]
    hint = " ".join(result.stdout.split("follow it with:")[1].split())
    # `gamead` as the PATH finds it, else this venv's own path: `make up` does not put the venv on the PATH
    assert hint == f"{gamead_program()} ads get {ad_id} --api {api_url}"
    again = runner.invoke(app, hint.split()[1:])
    assert again.exit_code == 0, again.output


def test_submit_stdin_with_flag_override(runner: CliRunner, api_url: str) -> None:
    body = run_json(runner, api_url, "submit", "-", "--priority", "5", input=json.dumps(AD))
    assert body["priority"] == 5
    record = run_json(runner, api_url, "ads", "get", body["id"])
    assert record["ad"]["title"] == AD["title"]
    assert record["ad"]["targetAudience"] == AD["targetAudience"]


def test_idempotency_key_returns_the_first_ad(runner: CliRunner, api_url: str, ad_file: Path) -> None:
    key = f"test-{uuid.uuid4()}"
    first = run_json(runner, api_url, "submit", str(ad_file), "--idempotency-key", key)
    second = run_json(runner, api_url, "submit", str(ad_file), "--idempotency-key", key)
    assert second["id"] == first["id"]
    assert first["duplicate"] is False and second["duplicate"] is True


def test_a_key_starting_with_a_quote_is_the_same_key_on_both_paths(runner: CliRunner, api_url: str,
                                                                    ad_file: Path) -> None:
    """The API reads a header starting with ``"`` as a Structured Field string (attack30a F7), so the CLI sends such
    a key quoted and escaped: the key stays the one typed, as in a batch item (``gamead submit --count``)."""
    key = f'"q-{uuid.uuid4().hex[:8]}\\"'
    first = run_json(runner, api_url, "submit", str(ad_file), "--idempotency-key", key)
    record = run_json(runner, api_url, "ads", "get", first["id"])
    assert record["idempotencyKey"] == key
    ad = json.loads(ad_file.read_text())
    batch = httpx.post(f"{api_url}/ads/batch", json={"ads": [{**ad, "idempotencyKey": key}]}, timeout=10).json()
    assert (batch["results"][0]["id"], batch["results"][0]["duplicate"]) == (first["id"], True)


def test_submit_from_flags_and_wait_prints_the_analysis(runner: CliRunner, api_url: str) -> None:
    args = ["submit", "--title", "Sky Saga", "--description", "Fly through floating islands",
            "--genre", "adventure", "--audience", "casual gamers", "--audience", "18-24",
            "--visual", "bright colors", "--cta", "Play free today", "--duration", "15",
            "--priority", "1", "--wait", "--timeout", "60"]  # fmt: skip
    result = run(runner, api_url, *args)
    assert result.exit_code == 0, result.output
    assert "completed" in result.stdout
    assert "Effectiveness" in result.stdout
    assert "Sky Saga" in result.stdout
    # its first line is plain submit's, priority and status too (a newcomer saw 'accepted ad ID' alone)
    assert re.search(r"^accepted ad \S+ +\(priority 1, queued\)$", unstyle(result.stderr), re.M), result.stderr


def test_submit_wait_json_is_the_final_record(runner: CliRunner, api_url: str, ad_file: Path) -> None:
    record = run_json(runner, api_url, "submit", str(ad_file), "--wait", "--timeout", "60")
    assert record["status"] == "completed"
    analysis = record["analysis"]
    assert 0 <= analysis["effectivenessScore"] <= 10
    assert analysis["components"] and analysis["analyzerVersion"]
    assert record["completedAt"] >= record["submittedAt"]


def test_submit_validation_error_names_the_fields(runner: CliRunner, api_url: str, tmp_path: Path) -> None:
    partial = tmp_path / "partial.json"
    partial.write_text('{"title": "Only a title"}', encoding="utf-8")
    result = run(runner, api_url, "submit", str(partial))
    assert result.exit_code == exitcodes.ERROR
    lines = unstyle(result.stderr).strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    for field in ("description", "genre", "callToAction", "duration"):
        assert field in lines[0]
    assert "validation_failed" in lines[0]
    assert result.stdout == ""


def test_an_ad_from_flags_needs_only_title_and_genre(runner: CliRunner, api_url: str) -> None:
    record = run_json(runner, api_url, "submit", "--title", "Star Racers", "--genre", "Racing", "--wait")
    assert record["status"] == "completed"
    assert record["ad"]["description"] and record["ad"]["callToAction"] and record["ad"]["duration"] == 30
    missing = run(runner, api_url, "submit", "--title", "Only a title")
    assert missing.exit_code == exitcodes.USAGE
    assert "--genre" in unstyle(missing.stderr) and len(unstyle(missing.stderr).strip().splitlines()) == 1


def test_a_refused_title_is_refused_alone(runner: CliRunner, api_url: str) -> None:
    """attack47 F8: `gamead submit --title $'\\e[31mX' --genre RPG` said `title: must not contain control characters
    (found U+001B); description: …` too: the description no one gave, made up from the title."""
    for flag, value in (("--title", "\x1b[31mSky Saga"), ("--genre", "RPG\x9b")):
        fields = {"--title": "Sky Saga", "--genre": "RPG", flag: value}
        result = run(runner, api_url, "submit", *(part for pair in fields.items() for part in pair))
        line = unstyle(result.stderr).strip()
        assert result.exit_code == exitcodes.ERROR and "validation_failed" in line, line
        assert f"{flag[2:]}: must not contain control characters" in line and "description" not in line, line


def test_api_url_with_a_wrong_path_says_so(runner: CliRunner, api_url: str) -> None:
    result = runner.invoke(app, ["ads", "get", "01m87v538ce744cfgethvyb39n", "--api", f"{api_url}/gamead"])
    assert result.exit_code == exitcodes.UNREACHABLE, result.output
    line = unstyle(result.stderr).strip()
    assert "no gamead API at" in line and "does not exist" not in line and len(line.splitlines()) == 1


def test_ads_get_and_list(runner: CliRunner, api_url: str, ad_file: Path) -> None:
    accepted = run_json(runner, api_url, "submit", str(ad_file), "--priority", "4", "--wait")
    ad_id = accepted["id"]

    record = run_json(runner, api_url, "ads", "get", ad_id)
    assert record["id"] == ad_id and record["priority"] == 4

    table = run(runner, api_url, "ads", "get", ad_id)
    assert table.exit_code == 0 and ad_id in table.stdout and "analysis" in table.stdout

    listing = run_json(
        runner, api_url, "ads", "list", "--status", "completed", "--priority", "4", "--limit", "500"
    )
    assert listing["count"] == len(listing["items"])
    assert ad_id in {item["id"] for item in listing["items"]}
    assert all(item["status"] == "completed" and item["priority"] == 4 for item in listing["items"])

    assert len(run_json(runner, api_url, "ads", "list", "--limit", "1")["items"]) <= 1

    table = run(runner, api_url, "ads", "list", "--limit", "5")
    assert table.exit_code == 0 and "STATUS" in table.stdout


def test_ads_get_unknown_id_is_exit_4(runner: CliRunner, api_url: str) -> None:
    result = run(runner, api_url, "ads", "get", "01m87v538ce744cfgethvyb39n")
    assert result.exit_code == exitcodes.NOT_FOUND
    lines = unstyle(result.stderr).strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert "Traceback" not in result.output


def test_submit_count_prints_a_summary(runner: CliRunner, api_url: str) -> None:
    summary = run_json(runner, api_url, "submit", "--count", "25", "--rate", "0", "--seed", "3")
    assert summary["sent"] == 25
    assert summary["accepted"] == 25
    assert summary["duplicates"] == 0 and summary["rejectedByCode"] == {}
    assert summary["elapsedSeconds"] > 0 and summary["ratePerSecond"] > 0


def test_submit_count_with_rate_and_wait(runner: CliRunner, api_url: str) -> None:
    key = f"bulk-{uuid.uuid4()}"
    args = ("submit", "--count", "10", "--rate", "50", "--wait", "--timeout", "60", "--idempotency-key", key)
    summary = run_json(runner, api_url, *args)
    assert summary["accepted"] == 10
    assert summary["completed"] == 10 and summary["failed"] == 0 and summary["pending"] == 0
    assert 0 <= summary["latencyP50Seconds"] <= summary["latencyP95Seconds"]
    assert summary["ratePerSecond"] <= 50 * 1.5  # paced, not a burst

    again = run_json(runner, api_url, "submit", "--count", "10", "--idempotency-key", key)
    assert again["duplicates"] == 10 and again["accepted"] == 0


def test_submit_count_table_summary(runner: CliRunner, api_url: str) -> None:
    result = run(runner, api_url, "submit", "--count", "5", "--genre", "puzzle")
    assert result.exit_code == 0, result.output
    for word in ("sent", "accepted", "duplicates", "rejected", "rate"):
        assert word in result.stdout
