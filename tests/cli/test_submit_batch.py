"""Issue 14.3 from the CLI: ``gamead submit --count`` and NDJSON files go through ``POST /ads/batch``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from gamead_cli.main import app
from tests.support import ad

pytestmark = pytest.mark.usefixtures("isolated_env")


def run_json(runner: CliRunner, api_url: str, *args: str, code: int = 0) -> Any:
    result = runner.invoke(app, [*args, "--api", api_url, "-o", "json"])
    assert result.exit_code == code, result.output
    return json.loads(result.stdout)


def test_count_is_sent_in_batches(runner: CliRunner, api_url: str) -> None:
    """37 ads in batches of 10 (4 requests): every one accepted once, and analysed."""
    summary = run_json(runner, api_url, "submit", "--count", "37", "--batch-size", "10", "--seed", "14",
                       "--wait", "--timeout", "60")
    assert (summary["sent"], summary["accepted"], summary["rejectedByCode"]) == (37, 37, {})
    assert summary["completed"] == 37 and summary["pending"] == 0


def test_an_ndjson_file_is_sent_with_its_bad_lines_counted(runner: CliRunner, api_url: str, tmp_path: Path) -> None:
    path = tmp_path / "ads.ndjson"
    lines = [json.dumps(ad(f"NDJSON {i}")) for i in range(5)]
    lines[2] = "{not json"
    lines.insert(4, json.dumps({**ad("Too long"), "duration": 9999}))
    lines.insert(1, "")  # blank lines are skipped
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    summary = run_json(runner, api_url, "submit", str(path), "--batch-size", "2", code=1)
    assert summary["accepted"] == 4
    # small56: `rejected` is the count the summary's row says (and the API's batch answer), by code in its own field;
    # it was the object by code, `"rejected": {}` beside the row's `rejected 0`
    assert (summary["rejected"], summary["rejectedByCode"]) == (2, {"invalid_json": 1, "validation_failed": 1})
    assert summary["accepted"] + summary["duplicates"] + summary["rejected"] == summary["sent"]  # README's sum


def test_ndjson_from_stdin_with_flag_overrides(runner: CliRunner, api_url: str) -> None:
    text = "\n".join(json.dumps(ad(f"Stdin {i}")) for i in range(3)) + "\n"
    result = runner.invoke(app, ["submit", "-", "--ndjson", "--priority", "1", "--wait", "--api", api_url,
                                 "-o", "json"], input=text)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["accepted"] == 3 and summary["completed"] == 3
