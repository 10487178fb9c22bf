"""attack30c F8: a JSON escape ``\\ud800`` (half of a UTF-16 surrogate pair) is valid JSON grammar but no character
(RFC 8259 §8.2). The CLI read it, and the HTTP client could not encode it: the whole batch of 100 was "not_sent",
a single-ad file or a `dlq import` line ended in "unexpected UnicodeEncodeError". Now the reader refuses it as
the API does: that line alone rejected ``invalid_json`` naming FILE:LINE and the escape; a single file or an
import line: exit 2 naming FILE:LINE."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from gamead_cli import exitcodes
from tests.cli.test_cli_errors import gamead, one_red_line
from tests.integration.dlq_lane import made_up_entry
from tests.support import RPG_AD


def test_one_line_with_an_unpaired_surrogate_is_rejected_alone_and_the_others_queued(tmp_path: Path,
                                                                                     api_url: str) -> None:
    tag = uuid.uuid4().hex[:8]
    lines = [json.dumps({**RPG_AD, "title": f"Surrogate {tag} {n}"}) for n in range(10)]
    lines[4] = lines[4].replace(f"Surrogate {tag} 4", "Half \\ud800 here")
    lines[6] = lines[6].replace(f"Surrogate {tag} 6", f"Surrogate {tag} 6 \\ud83c\\udfae")  # a pair: one character
    (tmp_path / "ads.ndjson").write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = gamead("submit", "ads.ndjson", "--api", api_url, "-o", "json", cwd=tmp_path)
    summary = json.loads(result.stdout)
    assert result.returncode == exitcodes.ERROR, result.stderr  # one ad rejected
    assert summary["accepted"] == 9 and summary["rejectedByCode"] == {"invalid_json": 1}, summary
    [rejection] = summary["rejections"]
    assert rejection["where"] == "ads.ndjson:5" and "\\ud800" in rejection["message"], rejection
    assert "RFC 8259" in rejection["message"] and "Traceback" not in result.stderr


def test_a_single_ad_file_with_an_unpaired_surrogate_is_bad_input_naming_its_line(tmp_path: Path,
                                                                                   closed_api_url: str) -> None:
    text = json.dumps(RPG_AD, indent=1).replace(f'"title": "{RPG_AD["title"]}"', '"title": "Low \\udc00 half"')
    assert "\\udc00" in text
    line = text[:text.index("\\udc00")].count("\n") + 1
    (tmp_path / "ad.json").write_text(text, encoding="utf-8")
    result = gamead("submit", "ad.json", "--api", closed_api_url, cwd=tmp_path)
    assert result.returncode == exitcodes.USAGE, result.stderr  # read before the API is called: not 3
    one_red_line(result, f"ad.json:{line}:", "\\udc00", "surrogate")


def test_dlq_import_refuses_a_line_with_an_unpaired_surrogate(tmp_path: Path, closed_api_url: str) -> None:
    good = json.dumps(made_up_entry("Imported Once"))
    bad = json.dumps({**made_up_entry("Imported Twice"), "errorMessage": "boom"}).replace("boom", "boom \\ud800")
    (tmp_path / "dead.jsonl").write_text(f"{good}\n{bad}\n", encoding="utf-8")
    result = gamead("dlq", "import", "dead.jsonl", "--api", closed_api_url, cwd=tmp_path)
    assert result.returncode == exitcodes.USAGE, result.stderr
    one_red_line(result, "dead.jsonl:2:", "\\ud800")
