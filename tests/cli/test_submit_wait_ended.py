"""newcomer47: ``gamead submit --wait`` whose ad ended dead exits 6 (README's exit codes), and now says why on one
red line of stderr with the command that shows it. Before, ``-q`` printed the id alone and exit 6 came with nothing
on stderr, so a script's log said nothing of why; the table output showed the record but no next step. Without the
fix: 2 failed (stderr empty); with it: 2 passed. ``-o json`` keeps stderr empty: its record on stdout says it."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner, Result

from gamead_cli import exitcodes
from gamead_cli.main import app
from gamead_cli.program import gamead_program
from tests.integration.dlq_lane import DOOMED, Lane, lane  # noqa: F401 - lane is a fixture

pytestmark = pytest.mark.usefixtures("isolated_env")


@pytest.fixture
def url(lane: Lane) -> Iterator[str]:  # noqa: F811 - the fixture imported above
    lane.worker(**DOOMED)  # every ad titled "Doomed…" fails for good at its first attempt
    yield lane.url


def submit(url: str, title: str, *flags: str) -> Result:
    args = ["submit", "--title", title, "--genre", "RPG", "--wait", "--timeout", "60", *flags, "--api", url]
    return CliRunner().invoke(app, args, env={"COLUMNS": "100"})


def one_line(text: str) -> str:
    return " ".join(text.split())


def test_quiet_wait_on_a_dead_ad_says_why_on_one_red_line(url: str) -> None:
    result = submit(url, "Doomed quiet", "-q")
    assert result.exit_code == exitcodes.AD_FAILED, result.output
    ad_id = result.stdout.strip()  # -q: the id alone on stdout, as before
    assert len(ad_id) == 26, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    said = one_line(result.stderr)
    assert said.startswith(f"error: ad {ad_id} ended dead after 1 analysis attempt: PermanentError: "), said
    assert f"see it with: {gamead_program()} dlq show {ad_id} --api {url}" in said, said  # runs as printed


def test_table_and_json_wait_on_a_dead_ad(url: str) -> None:
    table = submit(url, "Doomed table")
    assert table.exit_code == exitcodes.AD_FAILED, table.output
    assert "dead" in table.stdout  # the record, as before
    assert "ended dead" in one_line(table.stderr) and "dlq show" in table.stderr
    as_json = submit(url, "Doomed json", "-o", "json")
    assert as_json.exit_code == exitcodes.AD_FAILED, as_json.output
    assert json.loads(as_json.stdout)["status"] == "dead"
    assert as_json.stderr == ""


def test_a_file_waited_on_names_the_ads_that_ended_dead(url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """newcomer59: ``submit ads.ndjson --wait`` of 5 ads, 4 of which die, said ``failed/dead 4 ads`` and exit 6,
    naming none of them (stderr empty; ``-o json`` had no ids either): an operator could not tell which to look at.
    Now one red line names how many, the first 3 ids and the command that lists them, and ``-o json``'s
    ``failedIds`` every one, in input order. Without the fix: 1 failed (no failedIds); with it: 1 passed."""
    path = tmp_path / "ads.ndjson"
    titles = ["Doomed one", "Fine one", "Doomed two", "Doomed three", "Doomed four"]
    path.write_text("".join(json.dumps({"title": t, "description": "Build your kingdom now", "genre": "RPG",
                                        "callToAction": "Play now", "duration": 30}) + "\n" for t in titles))
    args = ["submit", str(path), "--wait", "--timeout", "60", "--api", url]
    as_json = CliRunner().invoke(app, [*args, "-o", "json"], env={"COLUMNS": "100"})
    assert as_json.exit_code == exitcodes.AD_FAILED, as_json.output
    summary = json.loads(as_json.stdout)
    doomed = [item["id"] for item, title in zip(summary["items"], titles, strict=True) if title.startswith("Doomed")]
    assert summary["failedIds"] == doomed, summary
    assert as_json.stderr == ""  # -o json: its failedIds say which
    table = CliRunner().invoke(app, args, env={"COLUMNS": "100"})
    assert table.exit_code == exitcodes.AD_FAILED, table.output
    lines = table.stderr.strip().splitlines()
    assert len(lines) == 1, table.stderr
    said = one_line(table.stderr)
    assert said.startswith("error: 4 ads of this run ended dead: "), said
    assert " and 1 more; see them with: " in said, said
    assert f"{gamead_program()} dlq list --api {url} (every id: -o json, failedIds)" in said, said


def test_ads_get_wait_follows_an_ad_sent_over_http(url: str) -> None:
    """newcomer59: an ad sent with curl (the README's quick start) could only be polled by hand: ``gamead ads get ID
    --follow``/``--wait`` was "No such option" (exit 2). Now ``ads get ID --wait`` waits for its end as ``submit
    --wait`` does: the record, exit 0; a dead one's one red line and exit 6. Without the fix: 1 failed; with it: 1
    passed."""
    import httpx

    body = {"title": "Fine http", "description": "Build your kingdom now", "genre": "RPG",
            "callToAction": "Play now", "duration": 30}
    fine = httpx.post(f"{url}/ads", json=body).json()["id"]
    doomed = httpx.post(f"{url}/ads", json={**body, "title": "Doomed http"}).json()["id"]
    done = CliRunner().invoke(app, ["ads", "get", fine, "--wait", "--timeout", "60", "-o", "json", "--api", url])
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["status"] == "completed"
    dead = CliRunner().invoke(app, ["ads", "get", doomed, "--wait", "--timeout", "60", "--api", url],
                              env={"COLUMNS": "100"})
    assert dead.exit_code == exitcodes.AD_FAILED, dead.output
    assert "dead" in dead.stdout  # the record
    said = one_line(dead.stderr)
    assert said.startswith(f"error: ad {doomed} ended dead after 1 analysis attempt: PermanentError: "), said
    assert f"see it with: {gamead_program()} dlq show {doomed} --api {url}" in said, said


def test_dlq_show_of_an_ad_not_in_the_dlq_says_where_it_is(url: str) -> None:
    """newcomer59: the hint ``its DLQ entry: gamead dlq show ID`` run once the ad had been replayed (or of an ad
    never dead) said only ``no dead-lettered ad with id …``, exit 4: nothing of where the ad is. Now the same one red
    line and exit 4 add the command that shows the ad. Without the fix: 1 failed; with it: 1 passed."""
    ad_id = json.loads(submit(url, "Fine shown", "-o", "json").stdout)["id"]
    shown = CliRunner().invoke(app, ["dlq", "show", ad_id, "--api", url], env={"COLUMNS": "100"})
    assert shown.exit_code == exitcodes.NOT_FOUND, shown.output
    assert len(shown.stderr.strip().splitlines()) == 1, shown.stderr
    said = one_line(shown.stderr)
    assert said.startswith(f"error: no dead-lettered ad with id '{ad_id}': not in the DLQ now"), said
    assert said.endswith(f"the ad itself: {gamead_program()} ads get {ad_id} --api {url}"), said
