"""What a reviewer found in the CLI (task C5), each as a kind: a number that overflows to infinity is refused
by every strict reader (in the API's words since numbers55: tests/cli/test_submit_numbers_past_range.py), a
chunk the submit pool could not send is counted and named, every ``-o json`` is strict JSON, a recording of the
wrong shapes is bad input, ``--record`` with ``--once`` records."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from gamead_cli.client import ApiClient
from gamead_cli.submit.sending import send_many
from gamead_cli.inputs import NotJson, strict_dumps, strict_loads
from tests.cli.test_review_c4 import invoke, one_red_line
from tests.support import ad

pytestmark = pytest.mark.usefixtures("isolated_env")


def strict_json(text: str) -> object:
    """``text`` parsed as RFC 8259 JSON (fails on NaN / Infinity)."""
    def refuse(token: str) -> object:
        raise AssertionError(f"{token} in -o json output: not JSON")
    return json.loads(text, parse_constant=refuse)


# --- item 1: 1e999 --------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, line", [('{"a": 1,\n "b": 1e999}', 2), ("[-1e999]", 1), ('{"a": 1E+400}', 1)])
def test_strict_loads_refuses_a_number_that_overflows(text: str, line: int) -> None:
    with pytest.raises(NotJson, match="is past the range this API reads") as caught:  # the API's words (numbers55)
        strict_loads(text)
    assert caught.value.line == line
    assert strict_loads('{"a": 1e308, "b": 1.5}') == {"a": 1e308, "b": 1.5}  # large but finite: kept


def test_strict_dumps_never_writes_nan_or_infinity() -> None:
    text = strict_dumps({"a": math.inf, "b": [1.0, -math.inf, {"c": math.nan}], "d": (2.5,)})
    assert strict_json(text) == {"a": None, "b": [1.0, None, {"c": None}], "d": [2.5]}


def test_submit_ndjson_with_1e999_names_the_line_and_sends_the_rest(tmp_path: Path, api_url: str) -> None:
    path = tmp_path / "x.ndjson"
    path.write_text(json.dumps(ad("C5 one")) + "\n" + json.dumps({**ad("C5 two")})[:-1] + ', "duration": 1e999}\n',
                    encoding="utf-8")
    code, out, err = invoke("submit", str(path), "--api", api_url, "-o", "json")
    summary = strict_json(out)
    # was: sent 2, accepted 0, rejected 0, exit 0: the chunk's ValueError vanished in the thread pool
    assert code == 1, err
    assert summary["sent"] == 2 and summary["accepted"] == 1 and summary["rejectedByCode"] == {"invalid_json": 1}
    assert summary["rejections"][0]["where"] == f"{path}:2"
    assert "(1e999) is past the range this API reads" in summary["rejections"][0]["message"]


def test_a_chunk_the_pool_cannot_send_is_counted_and_named(api_url: str) -> None:
    """Any exception of a chunk (here httpx's ValueError for an infinite float given to send_many directly) is
    counted as rejected ``not_sent`` and named: the pool's futures are read, nothing vanishes."""
    with ApiClient(api_url) as client:
        summary, ids = send_many(client, [ad("C5 fine"), {**ad("C5 inf"), "duration": math.inf}], total=2,
                                 rate=0, concurrency=1, idempotency_key=None, batch_size=2)
    assert summary["sent"] == 2 and summary["accepted"] == 0 and ids == []
    assert summary["rejectedByCode"] == {"not_sent": 2}
    assert [r["where"] for r in summary["rejections"]] == ["ad 1", "ad 2"]
    assert "ValueError" in summary["rejections"][0]["message"]


def test_submit_json_file_with_1e999_names_file_line(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text('{"title": "x",\n "duration": 1e999}\n', encoding="utf-8")
    code, _, err = invoke("submit", str(path))
    assert code == 2  # as every input file that is not JSON (README); was: unexpected ValueError, then exit 1
    assert "x.json:2: not valid JSON for this API: the number at byte 28 (1e999) is past" in one_red_line(err)


def test_dlq_import_with_1e999_is_exit_2_naming_file_line(tmp_path: Path, closed_api_url: str) -> None:
    path = tmp_path / "f.jsonl"
    path.write_text('{"a":1e999}\n', encoding="utf-8")
    code, _, err = invoke("dlq", "import", str(path), "--api", closed_api_url)
    assert code == 2, err  # was: unexpected ValueError, exit 1
    assert "f.jsonl:1: not valid JSON for this API: the number at byte " in one_red_line(err)


def test_top_replay_of_1e999_is_refused_not_printed_as_infinity(tmp_path: Path) -> None:
    path = tmp_path / "f.jsonl"
    path.write_text('{"v":1,"at":1,"snapshot":{"stats":{"queue":{"depth":1e999}}}}\n', encoding="utf-8")
    code, out, err = invoke("top", "--replay", str(path), "--once", "-o", "json")
    assert code == 2 and set(json.loads(out)) == {"error"}  # was: exit 0 and "Infinity" on stdout (not JSON)
    assert "f.jsonl:1: not valid JSON for this API: the number at byte " in one_red_line(err)


# --- item 3: a recording of the wrong shapes; --record with --once ----------------------------------------

@pytest.mark.parametrize("output", ["table", "json"])
def test_top_replay_of_valid_json_of_other_shapes_is_exit_2(tmp_path: Path, output: str) -> None:
    path = tmp_path / "f.jsonl"
    path.write_text('{"v":1,"at":1,"snapshot":{"stats":{"queue":"x"}}}\n', encoding="utf-8")
    code, out, err = invoke("top", "--replay", str(path), "--once", "-o", output)
    assert code == 2 and (out == "" if output == "table" else set(json.loads(out)) == {"error"})  # was: exit 1
    assert "f.jsonl:1: not a gamead top recording (AttributeError" in one_red_line(err)


def test_top_replay_names_the_line_of_the_wrong_shapes(tmp_path: Path) -> None:
    path = tmp_path / "f.jsonl"
    path.write_text('{"v":1,"at":1,"snapshot":{"stats":{}}}\n{"v":1,"at":2,"snapshot":{"stats":{"queue":"x"}}}\n',
                    encoding="utf-8")
    code, _, err = invoke("top", "--replay", str(path), "--once")
    assert code == 2
    assert "f.jsonl:2: not a gamead top recording (AttributeError" in one_red_line(err)


def test_top_record_with_once_records_the_one_snapshot(tmp_path: Path, api_url: str) -> None:
    path = tmp_path / "one.jsonl"
    code, out, err = invoke("top", "--once", "-o", "json", "--record", str(path), "--api", api_url)
    assert code == 0, err  # was: exit 0 and no file written
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1 and strict_json(lines[0])["snapshot"]["stats"]["queue"] == strict_json(out)["stats"]["queue"]
    code, again, err = invoke("top", "--replay", str(path), "--once", "-o", "json")
    assert code == 0, err
    assert strict_json(again)["stats"]["queue"] == strict_json(out)["stats"]["queue"]


@pytest.mark.parametrize("flag", ["--workers", "--max-workers"])
def test_up_refuses_more_workers_than_one_machine_runs(flag: str) -> None:
    """A leftover of session 6: ``gamead up --workers 100000`` tried to fork 100,000 workers. Now at most 64
    (``MAX_LOCAL_WORKERS``), refused at parse time: exit 2, one red line, nothing started (range46: in the one
    sentence of a number out of range, before pydantic's "Input should be less than or equal to 64")."""
    code, _, err = invoke("up", flag, "100000", "--port", "1")
    assert code == 2
    low = 0 if flag == "--workers" else 1
    assert one_red_line(err).startswith(f"error: {flag} must be {low} to 64, not 100,000 (see `gamead up --help`)")
