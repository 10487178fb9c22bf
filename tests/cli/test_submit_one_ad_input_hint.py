"""``gamead submit FILE`` / ``-`` reads one ad (or a JSON array of them) unless told the input is NDJSON.

Several ads one a line piped in (``printf '{…}\\n{…}\\n' | gamead submit -``) were refused as ``stdin:2: not valid JSON
(Extra data at column 1)``, and a longer stream as ``stdin: larger than 1024 KiB: … (many ads: an NDJSON file, one a
line)``: neither said the flag that sends them (``--ndjson``), the second named a file where there was a pipe.
Each now ends with what sends them: ``--ndjson -`` for stdin, ``--ndjson`` or a name ending ``.ndjson`` for a file.
Refused before any request (exit 2), as before."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gamead_cli import exitcodes
from gamead_cli.main import app
from gamead_cli.submit.reading import MAX_AD_FILE_BYTES

pytestmark = pytest.mark.usefixtures("isolated_env")

_AD = json.dumps({"title": "Sky Saga", "genre": "RPG", "description": "d", "callToAction": "Go", "duration": 15})
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _refused(runner: CliRunner, args: list[str], text: str) -> str:
    result = runner.invoke(app, ["submit", *args], input=text)
    lines = _ANSI.sub("", result.stderr).strip().splitlines()
    assert result.exit_code == exitcodes.USAGE, (result.exit_code, result.output)
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


@pytest.mark.parametrize("size", ["two-lines", "over-1-MiB"])
@pytest.mark.parametrize("where", ["stdin", "file"])
def test_several_ads_one_a_line_without_ndjson_are_refused_naming_the_flag(
        runner: CliRunner, tmp_path: Path, closed_api_url: str, size: str, where: str) -> None:
    count = 2 if size == "two-lines" else MAX_AD_FILE_BYTES // len(_AD) + 10
    text = "\n".join([_AD] * count) + "\n"
    if where == "stdin":
        line = _refused(runner, ["-", "--api", closed_api_url], text)
        assert "give --ndjson -" in line and "an NDJSON file" not in line, line  # a pipe is no file
    else:
        ads = tmp_path / "ads.txt"
        ads.write_text(text, encoding="utf-8")
        line = _refused(runner, [str(ads), "--api", closed_api_url], text="")
        assert "name the file *.ndjson or give --ndjson" in line, line
    name = "stdin" if where == "stdin" else "ads.txt"
    why = f"{name}:2: not valid JSON (Extra data" if size == "two-lines" else f"{name}: larger than 1024 KiB"
    assert why in line, line


@pytest.mark.parametrize("shape", ["one-ad", "an-array"])
def test_one_ad_and_an_array_are_still_read_whole(runner: CliRunner, closed_api_url: str, shape: str) -> None:
    """The hint changes no input that was read: one ad, or a JSON array of ads, over several lines (pretty-printed)
    goes for the API (here a closed port: exit 3, the API not reached), never refused as input."""
    ad = json.loads(_AD)
    text = json.dumps(ad if shape == "one-ad" else [ad, {**ad, "title": "Sky Saga II"}], indent=2)
    result = runner.invoke(app, ["submit", "-", "--api", closed_api_url], input=text)
    assert result.exit_code == exitcodes.UNREACHABLE, result.output
    assert "cannot reach the gamead API" in _ANSI.sub("", result.stderr), result.stderr


@pytest.mark.parametrize("where", ["stdin", "file"])
def test_an_array_over_the_bound_is_refused_as_an_array_with_how_to_send_it(
        runner: CliRunner, tmp_path: Path, closed_api_url: str, where: str) -> None:
    """attack60: a JSON array of 20,000 ads (2.2 MB) was refused ``larger than 1024 KiB: an ad is a small JSON
    object``: a file of many ads told that an ad is small, not that an array is read whole (so bounded) nor how to
    send it. It names the array, its bound, and what turns it into NDJSON (``jq -c '.[]'``)."""
    text = "[" + ",".join([_AD] * (MAX_AD_FILE_BYTES // len(_AD) + 10)) + "]"
    if where == "stdin":
        line = _refused(runner, ["-", "--api", closed_api_url], "\ufeff \n" + text)
    else:
        ads = tmp_path / "ads.json"
        ads.write_text(text, encoding="utf-8")
        line = _refused(runner, [str(ads), "--api", closed_api_url], text="")
    assert "larger than 1024 KiB: a JSON array of ads is read whole, at most 1024 KiB" in line, line
    assert "an ad is a small JSON object" not in line and "jq -c '.[]'" in line, line
