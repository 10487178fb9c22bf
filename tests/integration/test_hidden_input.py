"""A text that shows nothing is refused; hidden characters in an accepted one show escaped (attack32a F2, F6), on a
real API and nats-server, through the CLI.

Found: ``POST /ads`` with a title of three U+3164 HANGUL FILLER (category Lo: ``str.isprintable``) was 202 and
``gamead ads list`` showed a blank title; a title ``EVIL visible`` + six tag characters spelling ``ignore`` was 202
and every human view printed the tags raw (invisible in xterm, tmux, VTE).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from gamead_cli.main import app as cli
from tests.integration.dlq_lane import Lane, lane  # noqa: F401 - the lane fixture
from tests.support import ad

TAGS = "".join(chr(0xE0000 + ord(c)) for c in "ignore")
#: texts with no character that shows: Hangul fillers, braille blanks, tags, variation selectors, CGJ
BLANK = ["\u3164\u3164\u3164", "\u115f\u1160", "\uffa0 \uffa0", "\u2800\u2800", TAGS, "\ufe0f\ufe0f", "\u034f",
         "\u200b\u3164"]
HIDDEN = re.compile("[\U000e0000-\U000e007f\u3164]")


def _refused(resp: object, loc: str) -> None:
    assert resp.status_code == 422, resp.text[:300]  # type: ignore[attr-defined]
    error = resp.json()["error"]  # type: ignore[attr-defined]
    assert error["code"] == "validation_failed", error
    assert any(d["loc"] == loc and "character that shows" in d["msg"] for d in error["details"]), error


def _cli(target: Lane, *args: str) -> str:
    result = CliRunner().invoke(cli, [*args, "--api", target.url], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result.stdout


def test_a_text_that_shows_nothing_is_refused_and_hidden_tags_show_escaped(lane: Lane) -> None:  # noqa: F811
    for text in BLANK:
        _refused(lane.http.post("/ads", json=ad(text)), "title")
        _refused(lane.http.post("/ads", json=ad("Fine", targetAudience=["ok", text])), "targetAudience.1")
        batch = lane.http.post("/ads/batch", json={"ads": [ad("Fine"), ad("Fine", genre=text)]}).json()
        assert batch["results"][1]["error"]["code"] == "validation_failed", batch
    kept = lane.http.post("/ads", json=ad("Blank\u3164filler and braille⠀blank, ❤\ufe0f"))
    assert kept.status_code == 202, kept.text[:300]  # with a character that shows: accepted, as sent
    resp = lane.http.post("/ads", json=ad(f"EVIL visible{TAGS} hidden tags"))
    assert resp.status_code == 202, resp.text[:300]
    ad_id = resp.json()["id"]
    for out in (_cli(lane, "ads", "get", ad_id), _cli(lane, "ads", "list")):
        assert "EVIL visible\\U000e0069\\U000e0067\\U000e006e" in out and not HIDDEN.search(out), out
    assert json.loads(_cli(lane, "ads", "get", ad_id, "-o", "json"))["ad"]["title"] == f"EVIL visible{TAGS} hidden tags"


def test_ads_list_under_an_ascii_locale_keeps_its_80_columns(lane: Lane, tmp_path: Path) -> None:  # noqa: F811
    """attack32a F4: ``LANG=C LC_ALL=C PYTHONUTF8=0 gamead ads list``: a title of 120 combining marks ran ~130
    columns past the table once each mark became a one-column ``?``; a CJK title came out short."""
    titles = ["EVIL Z" + "\u0301" * 120 + "algo", "EVIL 龍の王国：権力への台頭 超長いタイトル🐉🐉🐉" * 2, "EVIL a\u2028b " * 9]
    for title in titles:
        assert lane.http.post("/ads", json=ad(title)).status_code == 202
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LC_", "LANG", "PYTHONUTF8", "PYTHONIOENC"))}
    env.update(LC_ALL="C", PYTHONUTF8="0", COLUMNS="80")
    run = subprocess.run([sys.executable, "-m", "gamead_cli", "ads", "list", "--api", lane.url], env=env, cwd=tmp_path,
                         capture_output=True, timeout=120, stdin=subprocess.DEVNULL)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.decode("ascii").splitlines()  # all ASCII: "?" for what the locale cannot write
    rows = [line for line in lines if "EVIL" in line]
    assert len(rows) == 3 and all(len(line) <= 80 for line in lines), "\n".join(lines)
    # each cut at the table's edge, but for the U+2028 title, whose escape (\u2028, 6 characters) stays or goes
    # whole (cell_text.clip_cells): with a title column of 12 (SCORE/10 took 3 more) it goes, and its row ends short
    widths = sorted(len(row.rstrip()) for row in rows)
    assert widths[-1] - widths[0] <= len("\\u2028") and widths[1] == widths[2], "\n".join(rows)
    assert all(row.rstrip().endswith("?") for row in rows), "\n".join(rows)  # the "…" of a cut, as "?"
    assert not re.search(r"\\u[0-9a-f]{0,3}\?$", "\n".join(r.rstrip() for r in rows), re.M), rows  # no half escape
