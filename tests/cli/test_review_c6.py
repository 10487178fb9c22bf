"""Operator findings of newcomer N8 and reviewer V8 (task C6), each asserted as the operator sees it: the real
``gamead`` against a fresh stack of its own (nats-server + one API, no worker: the lists start empty)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from gamead_cli.main import app
from tests.integration.dlq_lane import Lane, made_up_entry, shared_lane  # noqa: F401 - shared_lane is a fixture
from tests.support import ad, wait_for

pytestmark = pytest.mark.usefixtures("isolated_env")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture(scope="module")
def url(shared_lane: Lane) -> Iterator[str]:  # noqa: F811 - the fixture above
    yield shared_lane.url


def gamead(url: str, *args: str, code: int = 0) -> Result:
    result = CliRunner().invoke(app, [*args, "--api", url], env={"COLUMNS": "100"})
    assert result.exit_code == code, (args, result.output)
    return result


def as_json(url: str, *args: str, code: int = 0) -> Any:
    return json.loads(gamead(url, *args, "-o", "json", code=code).stdout)


def text(result: Result) -> str:
    return " ".join(_ANSI.sub("", result.stdout).split())


# --- 2. an empty list says so ------------------------------------------------------------------------------------

#: verb → (what it says when empty, its table's header that must not stand alone, its -o json empty shape)
EMPTY: dict[tuple[str, ...], tuple[str, str, dict[str, Any]]] = {
    ("dlq", "jobs"): ("no jobs", "JOB KIND STATE", {"items": [], "count": 0}),
    ("dlq", "jobs", "--state", "running"): ("no jobs match --state running", "JOB KIND", {"items": [], "count": 0}),
    ("dlq", "list"): ("the DLQ is empty", "ERROR MESSAGE", {"items": [], "count": 0, "total": 0}),
    ("dlq", "list", "--priority", "5"): ("the DLQ is empty", "ERROR MESSAGE", {"items": [], "count": 0}),
    ("ads", "list"): ("no ads", "STATUS PRI", {"items": [], "count": 0}),
    ("ads", "list", "--status", "dead"): ("no ads match --status dead", "STATUS PRI", {"items": [], "count": 0}),
    ("workers", "--role", "worker"): ("no live workers", "ROLE STATE", {"items": []}),
    ("audit",): ("no audit records", "WHO ACTION", {"items": [], "count": 0}),
    ("audit", "--actor", "bob"): ("no audit records match --actor bob", "WHO ACTION", {"items": [], "count": 0}),
}


@pytest.mark.parametrize("verb", list(EMPTY), ids=[" ".join(v) for v in EMPTY])
def test_an_empty_list_says_it_is_empty(url: str, verb: tuple[str, ...]) -> None:
    """N8: ``gamead dlq jobs`` with no jobs printed a table header alone. Every list verb says it in words;
    ``-o json`` keeps the verb's shape with an empty ``items``."""
    said, header, shape = EMPTY[verb]
    shown = text(gamead(url, *verb))
    assert shown.startswith(said), shown
    assert header not in shown, shown
    body = as_json(url, *verb)
    assert {k: body[k] for k in shape} == shape


def test_scale_status_says_there_is_no_decision_yet(url: str) -> None:
    body = as_json(url, "scale", "status")
    shown = text(gamead(url, "scale", "status"))
    if not body.get("decisions"):  # an API without an autoscaler leader: the decisions list is empty
        assert "last decisions no decisions recorded yet" in shown, shown
        assert "TICKS" not in shown


# --- 1. every submit form's -o json names the ids, in input order -------------------------------------------------


def test_ndjson_submit_json_names_each_ads_id_in_input_order(url: str, tmp_path: Path) -> None:
    """V8 F4: ``gamead submit FILE.ndjson -o json`` gave counts but no id: a script could not learn which ads
    were queued. ``items`` has one entry per line, in input order (here one ad a request, answered in any
    order), with the id or the rejection; ``acceptedIds`` the new ids in the same order."""
    lines = [json.dumps(ad("C6 first", 2)), json.dumps({**ad("C6 bad", 2), "title": ""}), "not json",
             json.dumps(ad("C6 fourth", 4)), json.dumps(ad("C6 fifth", 5))]
    path = tmp_path / "ads.ndjson"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    body = as_json(url, "submit", str(path), "--batch-size", "1", "--concurrency", "4", code=1)
    items = body["items"]
    assert [i["where"] for i in items] == [f"{path}:{n}" for n in range(1, 6)]
    assert [i["outcome"] for i in items] == ["accepted", "rejected", "rejected", "accepted", "accepted"]
    assert [i.get("code") for i in items[1:3]] == ["validation_failed", "invalid_json"]
    assert body["acceptedIds"] == [items[0]["id"], items[3]["id"], items[4]["id"]]
    titles = [as_json(url, "ads", "get", ad_id)["ad"]["title"] for ad_id in body["acceptedIds"]]
    assert titles == ["C6 first", "C6 fourth", "C6 fifth"]
    assert [r["where"] for r in body["rejections"]] == [f"{path}:2", f"{path}:3"]


def test_count_submit_json_names_every_id_and_a_duplicate(url: str) -> None:
    first = as_json(url, "submit", "--count", "4", "--batch-size", "2", "--idempotency-key", "c6-count")
    assert len(first["acceptedIds"]) == 4 and len(set(first["acceptedIds"])) == 4
    assert [i["outcome"] for i in first["items"]] == ["accepted"] * 4
    again = as_json(url, "submit", "--count", "4", "--batch-size", "2", "--idempotency-key", "c6-count")
    assert again["acceptedIds"] == [] and again["duplicates"] == 4
    assert [(i["outcome"], i["id"]) for i in again["items"]] == [("duplicate", i) for i in first["acceptedIds"]]


def test_one_ad_submit_json_is_its_202_with_the_id(url: str, tmp_path: Path) -> None:
    path = tmp_path / "ad.json"
    path.write_text(json.dumps(ad("C6 one", 3)), encoding="utf-8")
    body = as_json(url, "submit", str(path))
    assert body["id"] and body["status"] == "queued"


# --- 3. dlq show reads as the other show/get verbs ------------------------------------------------------------------


def test_dlq_show_has_labels_and_times_with_units(url: str, tmp_path: Path) -> None:
    """N8: ``gamead dlq show ID`` printed the wire names (``errorClass``, ``deadAt`` …) with raw ISO times."""
    entry = made_up_entry("C6 Doomed", priority=2)
    path = tmp_path / "dead.jsonl"
    path.write_text(json.dumps(entry) + "\n", encoding="utf-8")
    gamead(url, "dlq", "import", str(path))
    shown = gamead(url, "dlq", "show", entry["adId"])
    plain = _ANSI.sub("", shown.stdout)
    for label in ("ad id", "priority", "attempts", "error", "message", "first failure", "last failure", "dead at",
                  "submitted", "duration"):
        assert re.search(rf"^{label} ", plain, re.M), (label, plain)
    assert "PermanentError (not retryable)" in plain and "1 analysis attempt" in plain
    assert re.search(r"^dead at +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \(.+ ago\)", plain, re.M), plain
    assert "30 s" in plain and f"gamead dlq replay {entry['adId']} --api {url}" in " ".join(plain.split())
    for wire in ("adId", "errorClass", "errorMessage", "deadAt", "firstFailureAt", "workerId", "T0", "+00:00"):
        assert wire not in plain, wire
    body = as_json(url, "dlq", "show", entry["adId"])  # -o json unchanged: the wire names
    assert body["adId"] == entry["adId"] and body["errorClass"] == "PermanentError" and "deadAt" in body
    record = gamead(url, "ads", "get", entry["adId"])
    assert f"gamead dlq show {entry['adId']}" in " ".join(record.stdout.split())  # not "no analysis yet"


def test_a_json_array_file_is_sent_as_a_batch_naming_each_id(url: str, tmp_path: Path) -> None:
    """File/JSON input generally: a JSON file holding an array of ads (what a script writes with ``jq -s``) was
    refused ("must hold one JSON object"); it is sent as a batch, each ad named by its jq path, flags applied."""
    path = tmp_path / "ads.json"
    path.write_text(json.dumps([ad("C6 array one", 2), {**ad("C6 array bad", 2), "duration": 0},
                                ad("C6 array three", 2)]), encoding="utf-8")
    body = as_json(url, "submit", str(path), "--priority", "1", code=1)
    assert [(i["where"], i["outcome"]) for i in body["items"]] == [
        (f"{path}[0]", "accepted"), (f"{path}[1]", "rejected"), (f"{path}[2]", "accepted")]
    first, third = body["acceptedIds"]
    assert as_json(url, "ads", "get", third)["priority"] == 1 and first == body["items"][0]["id"]
    bad = tmp_path / "bad.json"
    bad.write_text('[{"title": "x"}, 7]', encoding="utf-8")
    refused = gamead(url, "submit", str(bad), code=2)  # bad input, as every input file (was 1; ops12a)
    assert f"{bad}[1]: is a number, not an ad" in " ".join(refused.stderr.split())


# --- 4. every figure printed says what it is ------------------------------------------------------------------------


def test_top_once_and_workers_say_what_each_figure_is(url: str) -> None:
    """N8: ``gamead top --once`` headed a column "PENDING, LAST 111 S". Its window keeps its unit as written, the
    abbreviated columns are told under their tables, rates count ads per second, the time is in UTC."""
    shown: list[str] = []  # the rates line comes with the API's first stats sample (a fresh API: a second)
    wait_for(lambda: shown.append(" ".join(_ANSI.sub("", gamead(url, "top", "--once").stdout).split())) or
             re.search(r"queued \d+\.\d+ ads/s", shown[-1]) is not None, timeout=30,
             what="top --once to show the API's first rates (two stats samples: a fresh API's first seconds show -)")
    top = shown[-1]
    assert re.search(r"PENDING, LAST \d+ (s|min) ", top), top
    assert "ACK-P: ack pending" in top and "MAX WAIT: the level's promised wait" in top
    assert re.search(r"queued \d+\.\d+ ads/s", top) and re.search(r"at \d\d:\d\d:\d\d UTC", top)
    assert "PROC P95: analysis time, last minute" in top
    workers = text(gamead(url, "workers"))
    assert "IN-FL: slots busy / slots" in workers and "HEARTBEAT: age of its last heartbeat" in workers
