"""An input file whose JSON object names a key twice is refused before anything is sent (I-JSON, RFC 7493 §2.3).

``gamead submit ad.json`` sent ``{"priority": 1, "priority": 5}`` as priority 5 (Python's json keeps the last
value; another reader keeps the first). Now bad input: exit 2 (README "Exit codes"), one red line naming the
file, the line and the key; nothing is queued (the same idempotency key then queues a fresh ad).
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from gamead_cli import exitcodes
from tests.cli.test_cli_errors import gamead, one_red_line
from tests.integration.dlq_lane import made_up_entry
from tests.support import RPG_AD


def _one_member_a_line(ad: dict[str, object]) -> tuple[str, int]:
    """``ad`` as JSON text, one member a line, ending with ``"priority": 5`` then ``"priority": 1``; and the
    line of the second."""
    members = [f"  {json.dumps(k)}: {json.dumps(v)}," for k, v in ad.items() if k != "priority"]
    lines = ["{", *members, '  "priority": 5,', '  "priority": 1', "}"]
    return "\n".join(lines) + "\n", len(lines) - 1


def test_submit_refuses_a_file_naming_a_key_twice_and_queues_nothing(tmp_path: Path, api_url: str) -> None:
    key = f"twice-cli-{uuid.uuid4().hex}"
    text, line = _one_member_a_line(RPG_AD)
    (tmp_path / "ad.json").write_text(text, encoding="utf-8")
    result = gamead("submit", "ad.json", "--idempotency-key", key, "--api", api_url, cwd=tmp_path)
    assert result.returncode == exitcodes.USAGE, result.stderr
    one_red_line(result, f'ad.json:{line}: the key "priority" appears twice in one object')
    (tmp_path / "once.json").write_text(json.dumps(RPG_AD), encoding="utf-8")
    fresh = gamead("submit", "once.json", "--idempotency-key", key, "--api", api_url, "-o", "json", cwd=tmp_path)
    assert fresh.returncode == 0, fresh.stderr
    assert json.loads(fresh.stdout)["duplicate"] is False  # nothing was queued under the key before


def test_an_escaped_repeat_in_an_array_file_is_named_with_its_line_and_item(tmp_path: Path,
                                                                          closed_api_url: str) -> None:
    text = json.dumps(RPG_AD) + ",\n" + json.dumps(RPG_AD)[:-1] + ', "t\\u0069tle": "Other"}'
    (tmp_path / "ads.json").write_text(f"[{text}]\n", encoding="utf-8")
    result = gamead("submit", "ads.json", "--api", closed_api_url, cwd=tmp_path)
    assert result.returncode == exitcodes.USAGE, result.stderr  # read before the API is called: not 3
    one_red_line(result, 'ads.json:2: the key "title" appears twice in one object at [1]')


def test_dlq_import_refuses_a_line_naming_a_key_twice(tmp_path: Path, closed_api_url: str) -> None:
    good = json.dumps(made_up_entry("Imported Once"))
    twice = good[:-1] + ', "attempts": 2}'
    (tmp_path / "dead.jsonl").write_text(f"{good}\n{twice}\n", encoding="utf-8")
    result = gamead("dlq", "import", "dead.jsonl", "--api", closed_api_url, cwd=tmp_path)
    assert result.returncode == exitcodes.USAGE, result.stderr
    one_red_line(result, 'dead.jsonl:2: the key "attempts" appears twice in one object')
