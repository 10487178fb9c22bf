"""Operator output edges a newcomer met trying the README (brief ops12a), each against a real API on its own NATS:

1. ``gamead ads list`` showed 50 of 605 ads with no word that more exist and no way to the next page: the API
   now pages by a keyset cursor (``nextCursor``), the table says how many are shown of how many and prints the
   next page's exact command; an ad submitted between pages neither shifts nor repeats one.
2. ``gamead dlq list`` at 60 or 80 columns cut the ids (``01m87v538ce744cfgethv…``): every list (ads list, dlq
   list, dlq jobs, workers) drops whole columns instead, and an id is never cut nor wrapped.
3. A file that is not JSON was exit 1 for ``gamead submit`` but 2 for ``dlq import`` and ``top --replay``: every
   reader of an input file says 2 (bad input), in one red line naming the file and line.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gamead_cli import exitcodes
from gamead_core.ad_ids import new_ad_id
from gamead_core.embedded import EmbeddedNats
from tests.support import ad, clean_env, run_gamead, start_api

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def gamead(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """The real ``gamead`` as an operator runs it (not a terminal: rich takes its width from ``COLUMNS``)."""
    return run_gamead(*args, env=clean_env(**env), cwd=cwd, timeout=120, errors="replace")


def red_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in _ANSI.sub("", result.stderr).splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stdout + result.stderr and "unexpected" not in result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def own_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An API (no worker: ads stay queued) on a NATS of its own, so the test knows every ad listed."""
    server = EmbeddedNats(tmp_path_factory.mktemp("nats-o12")).start()
    try:
        api, url = start_api(server.url, tmp_path_factory.mktemp("logs-o12"))
        try:
            yield url
        finally:
            api.stop(timeout=10)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def http(own_api: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=own_api, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def seven(http: httpx.Client) -> list[str]:
    """Seven ads submitted one after another: their ids, oldest first (plus ads the tests add later)."""
    ids = []
    for i in range(7):
        resp = http.post("/ads", json=ad(f"Page {i}", priority=2))
        assert resp.status_code == 202, resp.text
        ids.append(resp.json()["id"])
    return ids


# --- 1. paging ------------------------------------------------------------------------------------------------


def _order_key(item: dict[str, Any]) -> tuple[str, str]:
    return item["submittedAt"], item["id"]


def test_get_ads_pages_by_cursor_without_skipping_or_repeating_as_ads_arrive(http: httpx.Client,
                                                                            seven: list[str]) -> None:
    """Pages of 3 over the 7 ads, with 2 more submitted after the first page: the pages hold the 7, each once, in
    order (newest first), and the late ads on none of the later pages; the last page's cursor is null."""
    first = http.get("/ads", params={"priority": 2, "limit": 3}).json()
    assert first["count"] == 3 and first["total"] == 7 and first["nextCursor"], first
    late = [http.post("/ads", json=ad(f"Late {i}", priority=2)).json()["id"] for i in range(2)]
    pages, cursor = [first], first["nextCursor"]
    while cursor:
        page = http.get("/ads", params={"priority": 2, "limit": 3, "cursor": cursor}).json()
        pages.append(page)
        cursor = page["nextCursor"]
    listed = [item for page in pages for item in page["items"]]
    assert [p["count"] for p in pages] == [3, 3, 1], pages
    assert [i["id"] for i in listed] == list(reversed(seven)), "each of the 7 once, newest first"
    assert sorted(listed, key=_order_key, reverse=True) == listed
    assert not set(late) & {i["id"] for i in listed}
    assert pages[-1]["total"] == 9  # the filters' matches, every page's: the 2 late ads count there
    # read again from the first page, the late ads lead it
    assert [i["id"] for i in http.get("/ads", params={"priority": 2, "limit": 2}).json()["items"]] == late[::-1]


@pytest.mark.parametrize("cursor", ["abc", "-1", "123", f"123-{'x' * 26}", "123-01M87V538CE744CFGETHVYB39N",
                                    f"{'9' * 18}-01m87v538ce744cfgethvyb39n", "1-01m87v538ce744cfgethvyb39n.x",
                                    "1 -01m87v538ce744cfgethvyb39n", "x" * 5000], ids=lambda c: c[:30])
def test_a_malformed_cursor_is_422_validation_failed(http: httpx.Client, cursor: str) -> None:
    resp = http.get("/ads", params={"cursor": cursor})
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"]["code"] == "validation_failed"


def test_the_cursor_and_next_cursor_are_in_the_openapi_schema(http: httpx.Client) -> None:
    spec = http.get("/openapi.json").json()
    params = {p["name"]: p for p in spec["paths"]["/ads"]["get"]["parameters"]}
    assert "pattern" in params["cursor"]["schema"] or any("pattern" in s for s in params["cursor"]["schema"]
                                                          .get("anyOf", []))
    page = spec["components"]["schemas"]["AdPage"]["properties"]
    assert {"nextCursor", "total"} <= set(page), page


def test_ads_list_says_how_many_and_prints_the_next_pages_command(own_api: str, seven: list[str],
                                                                  tmp_path: Path) -> None:
    """The table ends ``3 shown of N, newest first · more exist; the next page:`` then, on one line however
    narrow the terminal (60 columns here), ``gamead ads list --cursor C --priority 2 --limit 3 --api URL``; that
    command, run as printed, gives the next page (``-o json`` carries the same ``nextCursor``)."""
    shown = gamead("ads", "list", "--priority", "2", "--limit", "3", "--api", own_api, cwd=tmp_path, COLUMNS="60")
    assert shown.returncode == 0, shown.stderr
    lines = _ANSI.sub("", shown.stdout).splitlines()
    counted = next((re.search(r"^3 shown of ([\d,]+), newest first · more exist; the next page:$", line.strip())
                    for line in lines if "shown of" in line), None)
    assert counted is not None, shown.stdout
    printed = [line.strip() for line in lines if " ads list --cursor " in line]
    assert len(printed) == 1 and printed[0].endswith(f"--api {own_api}"), shown.stdout
    # `gamead` as the PATH finds it, else the venv's own path (`make up` does not put the venv on the PATH)
    more = re.fullmatch(r"((\S*gamead) ads list --cursor (\S+) .*)", printed[0])
    assert more is not None
    as_json = json.loads(gamead("ads", "list", "--priority", "2", "--limit", "3", "--api", own_api, "-o", "json",
                                cwd=tmp_path).stdout)
    assert as_json["nextCursor"] == more.group(3) and as_json["total"] == int(counted.group(1).replace(",", ""))
    command = more.group(1).split()
    assert command[1:3] == ["ads", "list"] and "--priority" in command and "--limit" in command
    if command[0] == "gamead":  # on the PATH of this run
        nxt = gamead(*command[1:], "-o", "json", cwd=tmp_path)
    else:  # run verbatim, as printed
        nxt = subprocess.run([*command, "-o", "json"], env=clean_env(), cwd=tmp_path, capture_output=True, text=True,
                             check=False, timeout=120, stdin=subprocess.DEVNULL)
    assert nxt.returncode == 0, nxt.stderr
    following = json.loads(nxt.stdout)
    assert following["items"] and following["items"][0]["id"] not in {i["id"] for i in as_json["items"]}
    assert following["items"][0]["submittedAt"] <= as_json["items"][-1]["submittedAt"]
    # attack43b F4: the second page said "3 shown of N" as if 3 were missing; now which rows it holds
    assert as_json["offset"] == 0 and following["offset"] == 3, following
    second = gamead(*more.group(1).split()[1:], cwd=tmp_path, COLUMNS="60")
    assert f"rows 4-{3 + following['count']} of {counted.group(1)}, newest first" in _ANSI.sub("", second.stdout), \
        second.stdout


def test_ads_list_with_a_malformed_cursor_is_one_red_line_exit_2_before_any_request(tmp_path: Path,
                                                                                  closed_api_url: str) -> None:
    result = gamead("ads", "list", "--cursor", "not-a-cursor", "--api", closed_api_url, cwd=tmp_path)
    assert result.returncode == exitcodes.USAGE, result.stderr  # 2, not 3: nothing was sent
    assert "is not a page cursor" in red_line(result)


# --- 2. narrow terminals: ids whole, on one line ------------------------------------------------------------------


@pytest.fixture(scope="module")
def dead_entries(own_api: str, tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """Three DLQ entries with long error classes, messages and titles, imported (one import job)."""
    from datetime import UTC, datetime

    now = datetime.now(UTC).isoformat()
    ids, lines = [], []
    for i in range(3):
        ad_id = new_ad_id()
        ids.append(ad_id)
        title = f"A rather long title of dead ad number {i} that goes on"
        lines.append(json.dumps({
            "adId": ad_id, "title": title, "priority": 3, "attempts": 2, "errorClass": "AnalyzerUnavailableError",
            "errorMessage": "the analyzer did not answer within 30 s after three tries and gave up on it",
            "retryable": False, "firstFailureAt": now, "lastFailureAt": now, "deadAt": now, "submittedAt": now,
            "ad": ad(title, 3)}))
    path = tmp_path_factory.mktemp("dlq-o12") / "dead.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    done = gamead("dlq", "import", str(path), "--api", own_api, cwd=path.parent)
    assert done.returncode == 0, done.stderr
    return ids


LISTS = {  # a list verb → the ids in its -o json
    "ads list": lambda body: [i["id"] for i in body["items"]],
    "dlq list": lambda body: [i["adId"] for i in body["items"]],
    "dlq jobs": lambda body: [i["id"] for i in body["items"]],
    "workers": lambda body: [i["id"] for i in body["items"]],
}


@pytest.mark.parametrize("columns", [60, 80, 120])
@pytest.mark.parametrize("verb", list(LISTS))
def test_every_id_printed_is_whole_and_on_one_line(own_api: str, seven: list[str], dead_entries: list[str],
                                                   tmp_path: Path, verb: str, columns: int) -> None:
    """At 60 columns ``dlq list`` printed ``01m87v538ce744cfgethv…`` (and rich would shrink any list the same):
    each id the list holds is printed whole on one line, every line within the width, no id cut by "…"."""
    args = verb.split()
    body = json.loads(gamead(*args, "--api", own_api, "-o", "json", cwd=tmp_path).stdout)
    ids = LISTS[verb](body)
    assert ids, body
    table = gamead(*args, "--api", own_api, cwd=tmp_path, COLUMNS=str(columns))
    assert table.returncode == 0, table.stderr
    lines = _ANSI.sub("", table.stdout).splitlines()
    assert all(len(line.rstrip()) <= columns for line in lines), table.stdout
    for ad_id in ids:
        assert any(re.search(rf"(^|\s){re.escape(ad_id)}(\s|$)", line) for line in lines), (columns, ad_id,
                                                                                            table.stdout)
    cut = [line for line in lines if re.search(r"\b[0-9a-z]{6,}…", line) and not any(i in line for i in ids)]
    assert not cut, (columns, cut)


# --- 3. an input file that is not JSON: exit 2 everywhere, one red line naming file and line -------------------

NOT_JSON = {
    "ad.json": 'title: Sky Saga\ngenre: rpg\n',  # YAML, not JSON
    "ads.ndjson": "not json\n" + json.dumps(ad("fine")) + "\n",
    "dead.jsonl": json.dumps({"adId": "01m87v538ce744cfgethvyb39n"}) + "\n{broken\n",
    "rec.jsonl": json.dumps({"v": 1, "at": 1, "snapshot": {"stats": {}}}) + "\n\nnot json\n",
}
READERS = [
    (["submit", "ad.json"], "ad.json:1: not valid JSON"),
    (["submit", "ads.ndjson"], "ads.ndjson:1: not valid JSON"),
    (["dlq", "import", "dead.jsonl"], "dead.jsonl:2: not valid JSON"),
    (["top", "--replay", "rec.jsonl", "--once"], "rec.jsonl:3: not valid JSON"),  # line 3: the blank one counts
]


@pytest.mark.parametrize(("args", "named"), READERS, ids=[" ".join(a) for a, _ in READERS])
def test_a_file_that_is_not_json_is_exit_2_naming_file_and_line(tmp_path: Path, closed_api_url: str,
                                                               args: list[str], named: str) -> None:
    """Was: exit 1 for submit (and an NDJSON file whose first line is not JSON was sent, all of it rejected), 2
    for dlq import and top --replay. The API's port is closed: 2, not 3, also says nothing was sent."""
    for name, text in NOT_JSON.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    result = gamead(*args, "--api", closed_api_url, cwd=tmp_path)
    assert result.returncode == exitcodes.USAGE, (result.returncode, result.stderr)
    assert named in red_line(result)


@pytest.mark.parametrize("args", [["submit"], ["submit", "--ndjson"], ["dlq", "import"], ["top", "--once",
                                                                                          "--replay"]])
def test_a_missing_input_file_is_exit_2_in_the_same_words(tmp_path: Path, closed_api_url: str,
                                                          args: list[str]) -> None:
    result = gamead(*args, "gone.json", "--api", closed_api_url, cwd=tmp_path)
    assert result.returncode == exitcodes.USAGE, result.stderr
    assert "gone.json: does not exist" in red_line(result)


def test_the_readme_exit_table_says_a_file_not_json_is_2() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    row = next(line for line in readme.splitlines() if line.startswith("| 2 |"))
    assert "not valid JSON/NDJSON" in row and "missing" in row, row
