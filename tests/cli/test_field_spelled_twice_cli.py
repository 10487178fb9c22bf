"""An input file whose ad gives one field under both its names (``targetAudience`` and ``target_audience``) is
refused before anything is sent: which value counts would be a guess (the API refuses it too: 400
``ambiguous_field``). Bad input: exit 2, one red line naming the file and both keys. An NDJSON file is refused
whole when its first ad is such, a later one is that ad rejected (``ambiguous_field``) and the others sent, as
for a key named twice. A flag overriding a field the file gives under its Python name replaces it: one is sent.
"""

from __future__ import annotations

import json
from pathlib import Path

from gamead_cli import exitcodes
from tests.cli.test_cli_errors import gamead, one_red_line
from tests.support import RPG_AD

_BOTH = {**RPG_AD, "target_audience": ["rpg fans"]}
_WORDS = 'the field "targetAudience" is given twice, as "targetAudience" and as "target_audience"'


def test_submit_refuses_an_ad_file_giving_a_field_under_both_names(tmp_path: Path, closed_api_url: str) -> None:
    (tmp_path / "ad.json").write_text(json.dumps(_BOTH), encoding="utf-8")
    result = gamead("submit", "ad.json", "--api", closed_api_url, cwd=tmp_path)
    assert result.returncode == exitcodes.USAGE, result.stderr  # read before the API is called: not 3
    one_red_line(result, f"ad.json: {_WORDS}")


def test_an_array_file_names_the_ambiguous_item(tmp_path: Path, closed_api_url: str) -> None:
    both = {**RPG_AD, "call_to_action": "Play"}
    (tmp_path / "ads.json").write_text(json.dumps([RPG_AD, both]), encoding="utf-8")
    result = gamead("submit", "ads.json", "--api", closed_api_url, cwd=tmp_path)
    assert result.returncode == exitcodes.USAGE, result.stderr
    one_red_line(result, 'ads.json[1]: the field "callToAction" is given twice')


def test_an_ndjson_file_whose_first_ad_is_ambiguous_is_refused_whole(tmp_path: Path, closed_api_url: str) -> None:
    (tmp_path / "ads.ndjson").write_text(f"{json.dumps(_BOTH)}\n{json.dumps(RPG_AD)}\n", encoding="utf-8")
    result = gamead("submit", "ads.ndjson", "--api", closed_api_url, cwd=tmp_path)
    assert result.returncode == exitcodes.USAGE, result.stderr
    one_red_line(result, f"ads.ndjson:1: {_WORDS}")


def test_a_later_ambiguous_ndjson_ad_is_rejected_and_the_others_sent(tmp_path: Path, api_url: str) -> None:
    (tmp_path / "ads.ndjson").write_text(f"{json.dumps(RPG_AD)}\n{json.dumps(_BOTH)}\n", encoding="utf-8")
    result = gamead("submit", "ads.ndjson", "--api", api_url, "-o", "json", cwd=tmp_path)
    assert result.returncode == exitcodes.ERROR, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["accepted"], summary["rejectedByCode"]) == (1, {"ambiguous_field": 1}), summary
    assert "ads.ndjson:2" in result.stdout, result.stdout


def test_a_flag_replaces_the_field_the_file_gives_under_its_python_name(tmp_path: Path, api_url: str) -> None:
    ad = {k: v for k, v in RPG_AD.items() if k != "targetAudience"} | {"target_audience": ["from file"]}
    (tmp_path / "ad.json").write_text(json.dumps(ad), encoding="utf-8")
    result = gamead("submit", "ad.json", "--audience", "from flag", "--api", api_url, "-o", "json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    shown = gamead("ads", "get", json.loads(result.stdout)["id"], "--api", api_url, "-o", "json", cwd=tmp_path)
    assert json.loads(shown.stdout)["ad"]["targetAudience"] == ["from flag"], shown.stdout


def test_a_template_file_giving_a_python_name_is_sent_with_count(tmp_path: Path, api_url: str) -> None:
    """``--count N`` with a one-ad file as the template: the file's ``target_audience`` replaces the generated
    ads' ``targetAudience`` (one name sent), so all N are accepted (review27 F3: all were 400 ambiguous_field)."""
    ad = {k: v for k, v in RPG_AD.items() if k != "targetAudience"} | {"target_audience": ["from file"]}
    (tmp_path / "ad.json").write_text(json.dumps(ad), encoding="utf-8")
    result = gamead("submit", "ad.json", "--count", "2", "--api", api_url, "-o", "json", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads(result.stdout)
    assert (summary["accepted"], summary["rejectedByCode"]) == (2, {}), summary
    for ad_id in summary["acceptedIds"]:
        shown = gamead("ads", "get", ad_id, "--api", api_url, "-o", "json", cwd=tmp_path)
        assert json.loads(shown.stdout)["ad"]["targetAudience"] == ["from file"], shown.stdout
