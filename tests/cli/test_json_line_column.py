"""attack45 F1: a JSON Lines line cut short names the column where it stops, not "column 1" of the next line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gamead_cli.main import app

pytestmark = pytest.mark.usefixtures("isolated_env")

CUT = '{"title": "bad json",'  # 22 characters: the parser stops past the comma, at column 22


@pytest.mark.parametrize("eol", ["\n", "\r\n"])
def test_submit_ndjson_names_the_column_a_cut_line_stops_at(tmp_path: Path, closed_api_url: str, eol: str) -> None:
    (tmp_path / "ads.ndjson").write_text("[1]" + eol + CUT + eol, encoding="utf-8")
    result = CliRunner().invoke(app, ["submit", "ads.ndjson", "--api", closed_api_url, "-o", "json"])
    summary = json.loads(result.stdout)  # no ad to send: both lines rejected, no request
    [rejection] = [r for r in summary["rejections"] if r["where"] == "ads.ndjson:2"]
    assert rejection["code"] == "invalid_json"
    assert rejection["message"].endswith("at column 22)"), rejection  # was: "… at column 1)"


def test_dlq_import_names_the_column_a_cut_line_stops_at(tmp_path: Path, closed_api_url: str) -> None:
    path = tmp_path / "dead.jsonl"
    path.write_text(json.dumps({"adId": "01m87v538ce744cfgethvyb39n"}) + '\n{"adId": "x"\n', encoding="utf-8")
    result = CliRunner().invoke(app, ["dlq", "import", str(path), "--api", closed_api_url])
    assert result.exit_code == 2
    assert "dead.jsonl:2: not valid JSON (Expecting ',' delimiter at column 13)" in result.stderr  # was: column 1


def test_submit_ndjson_names_what_a_line_that_is_no_ad_holds(tmp_path: Path, closed_api_url: str) -> None:
    """regress45: a line of JSON that is no object said only `not one JSON object (an ad)`, where attack45 F12 names
    the value in JSON's words everywhere else (`must hold one JSON object … not a string`)."""
    (tmp_path / "ads.ndjson").write_text('"a"\n42\nnull\ntrue\n', encoding="utf-8")
    result = CliRunner().invoke(app, ["submit", "ads.ndjson", "--api", closed_api_url, "-o", "json"])
    summary = json.loads(result.stdout)  # no ad to send: every line rejected, no request
    said = {r["where"]: r["message"] for r in summary["rejections"]}
    assert said == {f"ads.ndjson:{n}": f"{kind}, not one JSON object (an ad)"
                    for n, kind in enumerate(("a string", "a number", "null", "true"), 1)}, said
