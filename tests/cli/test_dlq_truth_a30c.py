"""attack30c F3, F6, F7, F12, F13 on a live API (a DLQ lane of this module's own):

* F6: ``dlq replay/purge ID --yes`` of an id not in the DLQ exited 0; now 4 (``not_found``) when none of the ids
  is there, and the missing ones are named (text and ``-o json``) when some are, the job running for the others.
* F7: ``dlq import FILE`` read FILE again for the import: a FILE changed meanwhile ended "Invalid value for
  FILE", exit 2, after half of it was imported; now the import reads what was checked (a private copy).
* F12 / F13: an import cut by the API lost or by Ctrl-C said nothing of what was imported ("job X continues on
  the server" though the rest of the file was never sent); now it says how many lines were imported, which
  were not sent, and that the same command again skips what is already in the DLQ.
* F3: with UTF-8 mode off and an ASCII locale a non-ASCII title ended in "unexpected UnicodeEncodeError"; now
  it prints with ``?``."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from gamead_cli import exitcodes
from gamead_cli.commands import dlq_jobs, dlq_transfer
from gamead_cli.commands.dlq_transfer import IMPORT_BATCH_BYTES
from gamead_cli.main import app
from gamead_core.ad_ids import new_ad_id
from tests.forked_popen import GameadPopen
from tests.integration.dlq_lane import Lane, made_up_entry, shared_lane  # noqa: F401 - shared_lane is a fixture
from tests.support import run_gamead

pytestmark = pytest.mark.usefixtures("isolated_env")

N = 200  #: entries of a file to import: about 150 KB, three import requests at least


@pytest.fixture(scope="module")
def lane(shared_lane: Lane) -> Iterator[Lane]:  # noqa: F811 - the fixture above
    yield shared_lane


def _import(lane: Lane, *entries: dict[str, Any]) -> None:
    lane.run_job("/v1/dlq/import", {"entries": list(entries)})


def _invoke(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def _jsonl(path: Path, n: int, title: str) -> list[dict[str, Any]]:
    entries = [made_up_entry(f"{title} {i}") for i in range(n)]
    path.write_text("".join(json.dumps(e) + "\n" for e in entries))
    assert path.stat().st_size > 2 * IMPORT_BATCH_BYTES  # three import requests at least
    return entries


def _in_dlq(lane: Lane, entries: list[dict[str, Any]]) -> set[str]:
    wanted = {e["adId"] for e in entries}
    return {i["adId"] for i in lane.dlq()["items"]} & wanted


# --- F6 ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("verb", ["replay", "purge"])
def test_a_replay_or_purge_of_ids_none_of_which_is_in_the_dlq_is_exit_4_naming_them(lane: Lane, verb: str) -> None:
    ghost, other = new_ad_id(), new_ad_id()
    result = _invoke("dlq", verb, ghost, other, "--yes", "--api", lane.url)
    assert result.exit_code == exitcodes.NOT_FOUND, result.output  # was 0: a script recorded a replay never done
    said = " ".join(result.stderr.split())
    assert f"none of the given ids is in the DLQ ({ghost}, {other}): nothing {verb.rstrip('e')}ed" in said, said
    as_json = _invoke("dlq", verb, ghost, "--yes", "--api", lane.url, "-o", "json")
    assert as_json.exit_code == exitcodes.NOT_FOUND, as_json.output
    error = json.loads(as_json.stdout)["error"]
    assert error["code"] == "not_found" and error["details"] == {"notInDlq": [ghost]}, error


def test_a_purge_of_ids_some_of_which_are_not_in_the_dlq_names_them_and_purges_the_others(lane: Lane) -> None:
    present = [made_up_entry("Purge Me A"), made_up_entry("Purge Me B")]
    _import(lane, *present)
    ghost = new_ad_id()
    result = _invoke("dlq", "purge", present[0]["adId"], ghost, "--yes", "--api", lane.url)
    assert result.exit_code == 0, result.output
    assert f"not in the DLQ: {ghost}: not purged" in result.stderr, result.stderr
    assert "purged 1 of 1 matched" in result.stdout, result.stdout
    as_json = _invoke("dlq", "purge", present[1]["adId"], ghost, "--yes", "--api", lane.url, "-o", "json")
    assert as_json.exit_code == 0, as_json.output
    job = json.loads(as_json.stdout)
    assert job["notInDlqIds"] == [ghost] and job["counts"]["purged"] == 1, job
    assert not _in_dlq(lane, present)


def test_a_dry_run_names_the_ids_not_in_the_dlq(lane: Lane) -> None:
    ghost = new_ad_id()
    result = _invoke("dlq", "replay", ghost, "--dry-run", "--api", lane.url)
    assert result.exit_code == 0, result.output  # a count: it answers "0"
    assert f"0 entries would be replayed (not in the DLQ: {ghost})" in result.stdout, result.stdout


# --- F7 ----------------------------------------------------------------------------------------------------


def test_a_file_changed_during_its_import_imports_what_was_checked(lane: Lane, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "dead.jsonl"
    entries = _jsonl(path, N, "Changing File")
    real = dlq_transfer.follow_job

    def then_the_file_changes(*args: Any, **kw: Any) -> dict[str, Any]:
        final = real(*args, **kw)
        path.write_text("not JSON at all\n" * 10_000)  # another export overwrote it, or an editor, mid-import
        return final

    monkeypatch.setattr(dlq_transfer, "follow_job", then_the_file_changes)
    result = _invoke("dlq", "import", str(path), "--api", lane.url, "-o", "json")
    assert result.exit_code == 0, result.output  # was 2 "Invalid value for FILE: …:N: not valid JSON"
    assert json.loads(result.stdout)["imported"] == N
    assert len(_in_dlq(lane, entries)) == N


# --- F12 / F13 ---------------------------------------------------------------------------------------------


def test_ctrl_c_during_a_multi_batch_import_says_what_was_not_sent_and_the_same_command_resumes(
        lane: Lane, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "dead.jsonl"
    entries = _jsonl(path, N, "Interrupted Import")
    real, started = dlq_jobs._follow_lines, []

    def ctrl_c_in_the_second_job(client: Any, job_id: str) -> Iterator[dict[str, Any]]:
        started.append(job_id)
        for doc in real(client, job_id):
            if len(started) == 2:
                raise KeyboardInterrupt  # Ctrl-C while the second job runs
            yield doc

    monkeypatch.setattr(dlq_jobs, "_follow_lines", ctrl_c_in_the_second_job)
    result = _invoke("dlq", "import", str(path), "--api", lane.url)
    assert result.exit_code == exitcodes.INTERRUPTED, result.output
    err = " ".join(result.stderr.split())
    assert f"by job {started[0]}" in err and f"job {started[1]} (lines " in err, err
    assert "goes on on the server" in err and "not sent" in err, err  # was: "job X continues on the server"
    assert "run the same command again: entries already imported are skipped (identical)" in err, err
    lane.job_done(started[1])
    first = len(_in_dlq(lane, entries))
    assert 0 < first < N
    monkeypatch.setattr(dlq_jobs, "_follow_lines", real)
    again = _invoke("dlq", "import", str(path), "--api", lane.url, "-o", "json")
    assert again.exit_code == 0, again.output
    totals = json.loads(again.stdout)
    assert totals["imported"] == N - first and totals["skipped"] == first, totals
    assert len(_in_dlq(lane, entries)) == N


def test_an_import_cut_by_the_api_lost_says_how_much_was_imported(lane: Lane, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "dead.jsonl"
    entries = _jsonl(path, N, "Cut Import")
    api, url = lane.api()
    real, jobs = dlq_transfer.follow_job, []

    def then_the_api_dies(*args: Any, **kw: Any) -> dict[str, Any]:
        final = real(*args, **kw)
        jobs.append(final["id"])
        api.kill()  # the API node this import talks to is gone (SIGKILL)
        return final

    monkeypatch.setattr(dlq_transfer, "follow_job", then_the_api_dies)
    monkeypatch.setenv("GAMEAD_CLIENT__RETRY_FOR", "0")
    result = _invoke("dlq", "import", str(path), "--api", url)
    assert result.exit_code == exitcodes.UNREACHABLE, result.output
    imported = len(_in_dlq(lane, entries))
    err = " ".join(result.stderr.split())
    assert f"imported {imported} of {N} lines by job {jobs[0]}" in err, err  # was: no figure at all
    assert f"the {N - imported} lines from line {imported + 1} on were not sent" in err, err
    assert "run the same command again" in err, err


# --- F3 ----------------------------------------------------------------------------------------------------


def test_an_ascii_locale_without_utf8_mode_prints_non_ascii_titles_with_question_marks(lane: Lane) -> None:
    entry = made_up_entry("Drachen König")
    _import(lane, entry)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GAMEAD_", "LC_", "LANG", "PYTHONIOENCODING"))}
    env.update(LC_ALL="C", PYTHONUTF8="0", COLUMNS="200")
    for verb in (["dlq", "show", entry["adId"]], ["dlq", "list", "--newest", "-n", "5"]):
        result = run_gamead(*verb, "--api", lane.url, env=env)
        assert result.returncode == 0, result.stderr  # was 1: "unexpected UnicodeEncodeError"
        assert "Drachen K?nig" in result.stdout, result.stdout


def test_a_sigterm_during_a_multi_batch_import_says_what_was_imported_and_exits_143(lane: Lane,
                                                                                    tmp_path: Path) -> None:
    """review30b F5: SIGTERM and SIGHUP were "as Ctrl-C" for `gamead submit` only: a `dlq import` stopped by a
    `timeout`, a CI cancel or systemd died without its "imported N of M lines … run the same command again" line.
    A real process, a real SIGTERM once the first entries are in the DLQ."""
    import signal
    import subprocess

    from tests.support import clean_env, gamead_argv, killed_if_left, wait_for

    path = tmp_path / "dead.jsonl"
    entries = _jsonl(path, 3000, "Terminated Import")
    cli = GameadPopen(gamead_argv("dlq", "import", str(path), "--api", lane.url), stdout=subprocess.PIPE,
                      stderr=subprocess.PIPE, text=True, env=clean_env())
    with killed_if_left(cli):
        wait_for(lambda: len(_in_dlq(lane, entries)) > 0, timeout=60, what="the first entries imported")
        cli.send_signal(signal.SIGTERM)
        _, err = cli.communicate(timeout=60)
    said = " ".join(err.split())
    assert cli.returncode == exitcodes.TERMINATED, said  # 3,000 entries take seconds: the signal comes first
    assert "interrupted (SIGTERM); imported " in said and "run the same command again" in said, said
