"""attack30c F9, F5, F2, F11, F1: what a submit says it did.

* F9: NATS frozen part-way through a file submit: ads reported "may be queued … do not resend" were never queued,
  and text mode named none of them. Now the client looks them up before its summary: "not queued" with their
  FILE:LINE ranges (safe to resend), "queued (found)", and only the unsettled ones "may be queued".
* F5: SIGTERM mid-submit printed nothing; now it is handled as Ctrl-C: the summary, the line reached, exit 143.
* F2 / F11: a stdout that cannot be written (``/dev/full``) or is closed (``>&-``) after the ad was queued said only
  "cannot write the output" (or "unexpected AttributeError", a traceback with -o json); now the line says the ad
  was queued, with its id. With stderr closed, errors do not go to stdout.
* F1: stdin closed (``<&-``) on ``submit -`` / ``dlq import -``: exit 2, ``stdin: is closed (no input)``.

Real nats-server, API and ``gamead`` processes; faults are real (SIGSTOP of the test's own NATS, a real SIGTERM,
``/dev/full``, closed descriptors)."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from gamead_cli.submit.settling import where_ranges
from gamead_core.embedded import EmbeddedNats
from tests.forked_popen import GameadPopen, gamead_run
from tests.support import Proc, ad, clean_env, frozen, gamead_argv, start_api, wait_for


def _ndjson(path: Path, title: str, n: int) -> Path:
    path.write_text("".join(json.dumps(ad(f"{title} {i}")) + "\n" for i in range(n)))
    return path


def _listed(url: str, title: str) -> int:
    with httpx.Client(base_url=url, timeout=10) as http:
        items = http.get("/ads", params={"limit": 500}).json()["items"]
    return sum(1 for i in items if str(i["ad"]["title"]).startswith(title))


#: a shell's redirection (``sh -c 'exec "$@" REDIRECTION'``) as the descriptor it closes
CLOSES = {">&-": 1, "2>&-": 2, "<&-": 0}


def _shell(command: str, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``gamead args`` with its descriptors as ``sh -c 'exec "$@" COMMAND'`` leaves them: ``>&-``, ``2>&-``,
    ``<&-`` closed (its ``sys.std*`` None, as a fresh interpreter makes it), ``> /dev/full`` stdout on /dev/full;
    the others piped (stdin empty). Forked by the fork server (:class:`tests.forked_popen.GameadPopen`): through
    ``sh``, each was a fresh interpreter, ~1 CPU-s of imports, and 3-7 s a command at load 10-17 (this module's
    twelve such commands: 97 of its 110 s, suite46)."""
    assert command in CLOSES or command == "> /dev/full", command
    closed = (CLOSES[command],) if command in CLOSES else ()
    with open("/dev/full", "w") if command == "> /dev/full" else contextlib.nullcontext() as full:
        return gamead_run(gamead_argv(*args), env=env, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          stdout=full if full is not None else subprocess.PIPE, text=True, timeout=120, closed=closed)


def _start(path: Path, *args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    """``gamead args`` started, its stdout piped and its stderr written to ``path`` (read while it runs)."""
    with path.open("w") as err:
        return GameadPopen(gamead_argv(*args), env=env, stdout=subprocess.PIPE, stderr=err,
                           stdin=subprocess.DEVNULL, text=True)


def _said(path: Path) -> str:
    return " ".join(path.read_text().split())


def test_ads_left_may_be_queued_by_a_frozen_nats_are_looked_up_and_named_not_queued_by_line(
        fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path) -> None:
    """NATS stopped while a file is sent: every record create times out (the API's publish timeout, 1 s), each ad
    is answered "may still be queued" with its id, and the API withdraws them. Before its summary the client
    looks them up once NATS runs again: none exists, so the summary says "not queued … safe to resend" with the
    file's lines, not "may be queued, do not resend" (before: 6 ads said "may be queued", none queued)."""
    server = fresh_nats()
    api, url = start_api(server.url, tmp_path, GAMEAD_API__PUBLISH_TIMEOUT="1")
    procs.append(api)
    file = _ndjson(tmp_path / "stalled.ndjson", "Stalled line", 6)
    assert server.proc is not None
    with frozen(server.proc.pid):
        err = tmp_path / "stalled.err"
        cli = _start(err, "submit", str(file), "--batch-size", "3", "--api", url,
                     env=clean_env(GAMEAD_CLIENT__RETRY_FOR="60", COLUMNS="400"))
        wait_for(lambda: "looking up" in _said(err) or cli.poll() is not None, timeout=90,
                 what="the submit looking up its unanswered ads")
    out, _ = cli.communicate(timeout=120)
    text = " ".join(out.replace("│", " ").split())
    assert cli.returncode == 1, (out, _said(err))
    assert f"not queued 6 ads (no answer in time, and looked up: no such ad, never queued; safe to resend: lines " \
           f"{file}:1-6)" in text, text
    assert "may be queued" not in text, text
    assert _listed(url, "Stalled line") == 0  # none was queued: resending them queues each once


def test_where_ranges_join_consecutive_lines_of_one_source() -> None:
    assert where_ranges(["a.ndjson:3", "a.ndjson:4", "a.ndjson:5", "a.ndjson:9", "ad 1", "ad 2", "x.json[0]",
                         "x.json[1]", "x.json[3]"]) == ["a.ndjson:3-5", "a.ndjson:9", "ad 1-2", "x.json[0-1]",
                                                         "x.json[3]"]


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_a_sigterm_mid_submit_prints_the_summary_and_the_line_reached_exit_143(
        api_url: str, tmp_path: Path, sig: signal.Signals, code: int) -> None:
    """``timeout 2 gamead submit big.ndjson``: before, no summary and no line though 600 ads were queued. Now
    SIGTERM (and SIGHUP) is handled as Ctrl-C: the summary (as many accepted as the API holds), the line reached,
    exit 143 (129)."""
    title = f"Stopped by {sig.name}"
    file = _ndjson(tmp_path / "long.ndjson", title, 400)
    err = tmp_path / "long.err"
    cli = _start(err, "submit", str(file), "--rate", "40", "--api", api_url, "-o", "json", env=clean_env())
    wait_for(lambda: _listed(api_url, title) >= 8, timeout=60, what="some ads of the run queued")
    cli.send_signal(sig)
    out, _ = cli.communicate(timeout=60)
    assert cli.returncode == code, (out, _said(err))
    summary = json.loads(out)
    assert summary["interrupted"] is True and 8 <= summary["sent"] < 400, summary
    line = _said(err)
    assert f"interrupted ({sig.name}): {summary['sent']} of 400 ad(s) sent, the input up to " \
           f"{file}:{summary['sent']} (none after it)" in line, line
    wait_for(lambda: _listed(api_url, title) == summary["accepted"], timeout=30,
             what="the ads listed, as many as the summary says were accepted")


def test_a_queued_ad_whose_output_cannot_be_written_says_it_was_queued_with_its_id(
        api_url: str, tmp_path: Path) -> None:
    """``> /dev/full`` and ``>&-`` (closed), text and -o json: before, "cannot write the output" (or "unexpected
    AttributeError", a traceback with -o json) and no id, so a retrying script queued the ad twice."""
    env = clean_env()
    for redirect, where in (("> /dev/full", "stdout (/dev/full): No space left on device"),
                            (">&-", "stdout (closed)")):
        for output in ("table", "json"):
            done = _shell(redirect, "submit", "--title", "Output Lost", "--genre", "RPG", "--api", api_url,
                          "-o", output, env=env)
            lines = done.stderr.strip().splitlines()
            assert done.returncode == 1 and len(lines) == 1, (redirect, output, done.stderr)
            assert lines[0].startswith(f"error: cannot write the output to {where}; the ad WAS queued: id "), lines
            assert lines[0].endswith("; do not resend it"), lines
            ad_id = lines[0].split(" id ", 1)[1].split(";", 1)[0]
            assert httpx.get(f"{api_url}/ads/{ad_id}", timeout=10).status_code == 200
    many = _shell("> /dev/full", "submit", str(_ndjson(tmp_path / "few.ndjson", "Full disk", 3)), "--api", api_url,
                  env=env)
    assert many.returncode == 1, many.stderr
    assert "the ads WERE sent: 3 sent, 3 accepted, 0 duplicates, 0 rejected; do not resend the others" \
        in many.stderr, many.stderr
    listing = _shell(">&-", "ads", "list", "--limit", "1", "--api", api_url, env=env)
    assert (listing.returncode, listing.stderr.strip()) == (1, "error: cannot write the output to stdout (closed)")


def test_with_stderr_closed_an_error_never_goes_to_stdout(closed_api_url: str) -> None:
    done = _shell("2>&-", "ads", "list", "--api", closed_api_url, env=clean_env())
    assert (done.returncode, done.stdout) == (3, "")


def test_a_closed_stdin_is_one_line_exit_2() -> None:
    for args in (("submit", "-"), ("submit", "--ndjson", "-"), ("dlq", "import", "-")):
        done = _shell("<&-", *args, "--api", "http://127.0.0.1:9", env=clean_env())
        assert done.returncode == 2, (args, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and "FILE: stdin: is closed (no input)" in lines[0], done.stderr


def test_a_dlq_import_and_replay_whose_output_cannot_be_written_say_what_they_did(api_url: str, tmp_path: Path) -> None:
    """``dlq import FILE > /dev/full`` imported every entry, ``dlq replay ID --yes > /dev/full`` replayed it, yet
    both said only "cannot write the output", exit 1 (a script would run them again). Now the line says so."""
    from tests.integration.dlq_lane import made_up_entry

    entry = made_up_entry("Import Output Lost")
    file = tmp_path / "dead.jsonl"
    file.write_text(json.dumps(entry) + "\n")
    imported = _shell("> /dev/full", "dlq", "import", str(file), "--api", api_url, env=clean_env())
    assert imported.returncode == 1, imported.stderr
    assert "cannot write the output to stdout (/dev/full): No space left on device; the import WAS done: imported 1 " \
           "of 1 lines, skipped 0; do not import again" in " ".join(imported.stderr.split()), imported.stderr
    replayed = _shell("> /dev/full", "dlq", "replay", entry["adId"], "--yes", "--api", api_url, env=clean_env())
    line = " ".join(replayed.stderr.split())
    assert replayed.returncode == 1, replayed.stderr
    assert "cannot write the output to stdout (/dev/full): No space left on device; job " in line, line
    assert "(replay) ended succeeded: 1 of 1 done; do not start it again" in line, line
