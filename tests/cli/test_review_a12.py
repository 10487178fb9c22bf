"""A reviewer's attack (session 12): `gamead submit` called ads *rejected* (`api_unreachable`, "cannot reach the
gamead API") that the API had been sent and queued later. An API frozen (SIGSTOP by PID) 1.5 s into `submit
--count 2000 --rate 500` for 14 s took the requests and answered none within the client's timeout: the summary
said accepted 1,200, rejected 800, and all 2,000 completed; one ad submitted during the freeze was exit 3
"cannot reach the gamead API" and completed. An operator who resends "rejected" ads gets them analysed twice.
A request that went out and got no answer is now :class:`~gamead_core.errors.NoAnswer`: its ads *may be
queued*, counted apart and never called rejected, and the message says how to settle them. Real nats-server
and API processes."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx
from typer.testing import CliRunner

from gamead_cli.main import app
from gamead_cli.program import gamead_program
from gamead_core.embedded import EmbeddedNats
from tests.support import Proc, frozen, start_api, wait_for

#: the client gives up on an answer after 1 s and sends nothing again (the README's `client.*` settings)
QUICK = {"GAMEAD_CLIENT__TIMEOUT": "1", "GAMEAD_CLIENT__RETRY_FOR": "0"}


def _api(fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path) -> tuple[Proc, str]:
    api, url = start_api(fresh_nats().url, tmp_path)
    procs.append(api)
    return api, url


def _queued(url: str) -> int:
    with httpx.Client(base_url=url, timeout=10) as http:
        return int(http.get("/ads", params={"limit": 100}).json()["count"])


def _all_queued(api: Proc, url: str, expected: int) -> None:
    """Wait until the API, continued, has queued every ad it was sent (``expected`` listed). Before freezing it again:
    a freeze that caught its record creates in flight (a loaded machine gave it only milliseconds between two
    frozen blocks) timed them out on its own clock (api.publish_timeout, 2 s) and it took the records back, as it
    does any create that got no answer: those ads were then, rightly, not queued."""
    seen: list[int] = []  # what the list said, for the failure's message (a full run once timed out here)
    try:
        wait_for(lambda: seen.append(_queued(url)) or seen[-1] == expected, timeout=30,
                 what="every ad the frozen API was sent, queued")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; queued ads listed, last polls: {seen[-3:]}, expected {expected}; "
                             f"API log tail:\n{api.output()[-2000:]}") from None


def test_a_batch_a_frozen_api_never_answered_may_be_queued_it_is_not_rejected(
        fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path) -> None:
    api, url = _api(fresh_nats, procs, tmp_path)
    with frozen(api.pid):
        cli = CliRunner().invoke(app, ["submit", "--count", "6", "--batch-size", "3", "--api", url, "-o", "json"],
                                 env=QUICK)
    summary = json.loads(cli.stdout)
    sent = summary["sent"]
    assert cli.exit_code == 1, cli.output
    assert sent >= 3 and summary["rejectedByCode"] == {} and summary["accepted"] == 0, summary
    assert summary["maybeQueued"] == summary["maybeQueuedUnknown"] == sent, summary
    assert [i["outcome"] for i in summary["items"]] == ["maybeQueued"] * sent
    assert summary.get("notSent", 0) == 6 - sent  # stopped after a batch got no answer: the rest said, not hidden
    _all_queued(api, url, sent)  # continued, the API queues every ad it was sent (the reviewer's 800 all completed)
    # the table says so, and what to do: no resend (their ids never came back)
    with frozen(api.pid):
        table = CliRunner().invoke(app, ["submit", "--count", "3", "--batch-size", "3", "--api", url], env=QUICK)
    text = " ".join(table.stdout.replace("│", " ").split())
    assert table.exit_code == 1, table.output
    assert ("rejected 0 ads may be queued 3 ads (no answer in time, still unknown: they may still be analysed; lines "
            "ad 1-3; do not resend them without an idempotency key: look them up, or find those whose batch got no "
            "answer with the command below)") in text, text
    assert text.endswith(f"find them with: {gamead_program()} ads list --api {url}"), text  # runs as printed
    _all_queued(api, url, sent + 3)
    # with a key, the summary names it: the same command with the same key settles them, nothing queued twice
    with frozen(api.pid):
        keyed = CliRunner().invoke(app, ["submit", "--count", "3", "--batch-size", "3", "--idempotency-key", "run-7",
                                         "--api", url, "-o", "json"], env=QUICK)
    keyed_summary = json.loads(keyed.stdout)
    assert keyed_summary["maybeQueuedKeys"] == ["run-7-0", "run-7-1", "run-7-2"], keyed_summary
    _all_queued(api, url, sent + 3 + 3)
    again = CliRunner().invoke(app, ["submit", "--count", "3", "--batch-size", "3", "--idempotency-key", "run-7",
                                     "--api", url, "-o", "json"], env=QUICK)
    settled = json.loads(again.stdout)
    assert again.exit_code == 0 and settled["accepted"] == 0 and settled["duplicates"] == 3, again.output
    assert _queued(url) == sent + 3 + 3


def test_one_ad_a_frozen_api_never_answered_is_one_line_saying_it_may_be_queued(
        fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path) -> None:
    api, url = _api(fresh_nats, procs, tmp_path)
    with frozen(api.pid):
        cli = CliRunner().invoke(app, ["submit", "-t", "Frozen Saga", "-g", "RPG", "--api", url], env=QUICK)
    assert cli.exit_code == 3, cli.output
    lines = cli.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in cli.output, cli.output
    assert f"the gamead API at {url} got the request but gave no answer (no answer within 1s)" in lines[0]
    assert f"the ad may be queued: look for it with `{gamead_program()} ads list --api {url}` before sending it " \
           "again" in lines[0]
    assert "cannot reach" not in lines[0]


def test_a_read_a_frozen_api_never_answered_says_nothing_was_changed(
        fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path) -> None:
    """attack26 F6: ``gamead workers`` against a frozen API said "it may have been carried out", words for a write,
    of a ``GET``. A read (and a dry run) now says it changed nothing; a write still says it may have been done."""
    api, url = _api(fresh_nats, procs, tmp_path)
    for verb in (["workers"], ["scale", "status"], ["dlq", "replay", "--all", "--dry-run"]):
        with frozen(api.pid):
            cli = CliRunner().invoke(app, [*verb, "--api", url], env=QUICK)
        lines = cli.stderr.strip().splitlines()
        assert cli.exit_code == 3 and len(lines) == 1, (verb, cli.output)
        assert "gave no answer (no answer within 1s): a read: nothing was changed" in lines[0], (verb, lines)
        assert "carried out" not in lines[0], (verb, lines)
    with frozen(api.pid):
        cli = CliRunner().invoke(app, ["scale", "clear", "--api", url], env=QUICK)
    assert cli.exit_code == 3 and "it may have been carried out" in cli.stderr, cli.output
