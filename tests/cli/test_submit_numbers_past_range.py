"""The CLI's reader of input files refuses every number the API refuses as past a double's range, in the API's words
(numbers55). Before: ``gamead submit`` read an integer of 400 digits (the API then refused each such ad, 400
``invalid_json``), and said ``1e999`` ("overflows to infinity") and 5,000 digits ("gamead reads numbers of at most
4,300 digits") in words of its own. Now one rule, :mod:`gamead_core.json_numbers`: ``FILE:LINE: not valid JSON for
this API: the number at byte N (…) is past the range this API reads (a double's: ±1.8e308)``, exit 2 for an ad
file or an NDJSON file's first line, nothing sent; a later NDJSON line is that ad rejected ``invalid_json`` and the
others sent (README "Exit codes", the rule for bad lines)."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from gamead_cli.inputs import BadInputFile, load_json, strict_loads
from gamead_core.api.body import not_json
from tests.cli.test_review_c4 import invoke, one_red_line
from tests.support import ad

pytestmark = pytest.mark.usefixtures("isolated_env")

WORDS = "is past the range this API reads (a double's: ±1.8e308)"
D400 = "9" * 400
#: (number as written, as the message shows it)
PAST = [(D400, f"{'9' * 40}…, 400 characters"), ("1e999", "1e999"),
        ("-" + "9" * 5000, f"-{'9' * 39}…, 5,001 characters"), ("1.8e308", "1.8e308")]
IDS = ["400 digits", "1e999", "-5000 digits", "1.8e308"]


@pytest.mark.parametrize(("number", "shown"), PAST, ids=IDS)
def test_submit_file_with_a_number_past_range_is_one_red_line_with_its_line_exit_2(
        tmp_path: Path, closed_api_url: str, number: str, shown: str) -> None:
    path = tmp_path / "ad.json"
    path.write_text(f'{{"title": "T", "genre": "RPG",\n"duration": {number}}}\n', encoding="utf-8")
    code, _, err = invoke("submit", str(path), "--api", closed_api_url)
    assert code == 2, err  # refused as it is read: the API (closed here) is never asked
    line = one_red_line(err)
    at = len('{"title": "T", "genre": "RPG",\n"duration": ')
    assert f"ad.json:2: not valid JSON for this API: the number at byte {at} ({shown}) {WORDS}" in line, line


@pytest.mark.parametrize(("number", "shown"), PAST[:2], ids=IDS[:2])
def test_an_ndjson_first_line_past_range_refuses_the_file_nothing_sent(
        tmp_path: Path, closed_api_url: str, number: str, shown: str) -> None:
    path = tmp_path / "ads.ndjson"
    path.write_text(f'{{"title": "T", "duration": {number}}}\n' + json.dumps(ad("N55 fine")) + "\n", encoding="utf-8")
    code, _, err = invoke("submit", str(path), "--api", closed_api_url)
    assert code == 2, err
    at = len('{"title": "T", "duration": ')
    assert f"ads.ndjson:1: not valid JSON for this API: the number at byte {at} ({shown}) {WORDS}" in one_red_line(err)


def test_a_later_ndjson_line_past_range_is_that_ad_rejected_the_others_sent(tmp_path: Path, api_url: str) -> None:
    path = tmp_path / "ads.ndjson"
    path.write_text(json.dumps(ad("N55 one")) + "\n" + json.dumps(ad("N55 two"))[:-1] + f', "duration": {D400}}}\n'
                    + json.dumps(ad("N55 three")) + "\n", encoding="utf-8")
    code, out, err = invoke("submit", str(path), "--api", api_url, "-o", "json")
    summary = json.loads(out)
    assert code == 1, err  # was: 3 sent, the API refusing line 2 itself
    assert summary["accepted"] == 2 and summary["rejectedByCode"] == {"invalid_json": 1}, summary
    assert summary["rejections"][0]["where"] == f"{path}:2"
    assert f"({'9' * 40}…, 400 characters) {WORDS}" in summary["rejections"][0]["message"]


@pytest.mark.parametrize("number", [D400, "1e999", "1e400", "-1.8e308", "9" * 5000, "1E+309"],
                         ids=["400 digits", "1e999", "1e400", "-1.8e308", "5000 digits", "1E+309"])
def test_the_cli_says_what_the_api_says_of_the_same_text(number: str) -> None:
    body = f'{{"ads": [{{"title": "é", "note": "1e999 {D400}", "duration": {number}}}]}}'
    with pytest.raises(orjson.JSONDecodeError) as refused:
        orjson.loads(body)
    api = not_json(body.encode(), refused.value).message
    with pytest.raises(BadInputFile) as caught:
        load_json(body.encode(), "ads.json")
    assert api == f"the body is not valid JSON for this API: {caught.value.problem.split(': ', 1)[1]}"
    assert caught.value.line == 1
    assert caught.value.problem.startswith("not valid JSON for this API: the number at byte ")


@pytest.mark.parametrize("number", ["9" * 308, "1.7976931348623157e308", "-" + "9" * 308, "1e-999", "0." + "0" * 500],
                         ids=["308 digits", "max double", "-308 digits", "1e-999", "501 decimals"])
def test_a_number_within_a_double_s_range_is_read_as_the_api_reads_it(number: str) -> None:
    assert strict_loads(f'{{"duration": {number}}}') == json.loads(f'{{"duration": {number}}}')
    orjson.loads(f'{{"duration": {number}}}')  # the API reads it too
