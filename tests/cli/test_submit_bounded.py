"""attack27 F6 and F9 (first two bullets): what an operator sees of ``gamead submit`` fed from an endless pipe, of its
rates, and of a FILE argument that is a FIFO nobody reads.

F6: ``yes '{}' | gamead submit --ndjson - -o json`` grew the client by ~20 MB/s (every ad's item and id kept for
the whole run) and listed the first 20 rejections *answered* (``stdin:101``…) rather than lines 1-20. Now per-ad
detail is kept for the first :data:`~gamead_cli.submit.sending.ITEMS_KEPT` ads (``itemsOmitted`` counts the rest)
and the rejections listed are the first 20 in input order. The test feeds a bounded generator process (the cap +
500 lines) through a real pipe to a real ``gamead submit`` against a real stack (nats-server + one API); memory
itself is not measured: the cap being applied is what the user sees.

F9: ``acceptedPerSecond`` counted duplicates; ``top --once --record FIFO`` and ``dlq export FIFO`` blocked for ever
on a FIFO nobody reads. The subprocess timeouts below are deadlines for a hang, never the assertion."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from gamead_cli import exitcodes
from gamead_cli.main import app
from gamead_cli.submit import sending as sending_module
from gamead_cli.submit.batches import keep_first
from gamead_cli.submit.sending import ITEMS_KEPT
from gamead_cli.submit.views import summary_view
from tests.cli.test_cli_errors import gamead
from tests.forked_popen import gamead_run
from tests.integration.dlq_lane import Lane, shared_lane  # noqa: F401 - shared_lane is a fixture
from tests.support import ad, clean_env, gamead_argv

_ANSI = re.compile(r"\x1b\[[0-9;]*m")

#: writes the lines of the F6 test to stdout, then ends: argv[1] the cap, argv[2] one valid ad (JSON)
GENERATOR = r"""
import sys
cap, good = int(sys.argv[1]), sys.argv[2]
out = sys.stdout
for n in range(1, cap + 501):
    if n <= 100 or 300 < n <= cap + 200:
        out.write("{}\n")        # refused by the API: validation_failed
    elif n <= 200:
        out.write("not json\n")  # refused by the client itself, no request: invalid_json
    else:
        out.write(good + "\n")   # accepted: 201-300 (listed) and the last 300 (after the cap)
out.flush()
"""


def test_an_endless_style_stdin_lists_the_first_ads_only_and_the_first_20_rejections_in_input_order(
        tmp_path: Path, shared_lane: Lane) -> None:  # noqa: F811 - the fixture
    """Lines 1-100 need the API's answer to be rejected; lines 101-200 are rejected by the client at once (a
    batch of bad JSON sends no request), so they are answered first: the list was ``stdin:101``…``stdin:120``."""
    generator = subprocess.Popen([sys.executable, "-c", GENERATOR, str(ITEMS_KEPT), json.dumps(ad("F6 listed"))],
                                 stdout=subprocess.PIPE)
    try:
        assert generator.stdout is not None
        result = gamead_run(gamead_argv("submit", "--ndjson", "-", "-o", "json", "--rate", "0",
                                        "--api", shared_lane.url),
                            stdin=generator.stdout, capture_output=True, text=True, env=clean_env(),
                            cwd=tmp_path, timeout=300)
        generator.stdout.close()
    finally:
        assert generator.wait(timeout=60) == 0
    assert result.returncode == exitcodes.ERROR, result.stderr  # ads were rejected
    body = json.loads(result.stdout)
    total = ITEMS_KEPT + 500
    assert body["sent"] == total and body["accepted"] == 400, {k: v for k, v in body.items() if k != "items"}
    assert body["rejectedByCode"] == {"validation_failed": ITEMS_KEPT, "invalid_json": 100}
    # per-ad detail of the first ITEMS_KEPT lines, in input order; the 500 after them counted, not listed
    items = body["items"]
    assert len(items) == ITEMS_KEPT and body["itemsOmitted"] == 500
    assert [i["where"] for i in items[:2]] == ["stdin:1", "stdin:2"] and items[-1]["where"] == f"stdin:{ITEMS_KEPT}"
    assert [i["outcome"] for i in items[200:300]] == ["accepted"] * 100
    assert body["acceptedIds"] == [i["id"] for i in items[200:300]]  # the 300 accepted after the cap: not listed
    # the first 20 rejections in input order, whatever order the batches were answered in
    assert [r["where"] for r in body["rejections"]] == [f"stdin:{n}" for n in range(1, 21)]
    assert {r["code"] for r in body["rejections"]} == {"validation_failed"}
    assert body["rejectionsNotListed"] == ITEMS_KEPT + 100 - 20


def test_a_rerun_of_an_idempotent_submit_says_no_ad_was_accepted_a_second(
        shared_lane: Lane, isolated_env: Path) -> None:  # noqa: F811 - the fixture
    """F9: the rerun printed ``"accepted": 0, "duplicates": 4, "acceptedPerSecond": …`` above 0 (duplicates
    counted). ``acceptedPerSecond`` is ads newly queued; ``answeredPerSecond`` every ad the API answered."""
    args = ["submit", "--count", "4", "--idempotency-key", "f9-rate", "-o", "json", "--api", shared_lane.url]
    first = json.loads(CliRunner().invoke(app, args).stdout)
    assert first["accepted"] == 4 and first["acceptedPerSecond"] > 0
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0, again.output
    body = json.loads(again.stdout)
    assert (body["accepted"], body["duplicates"]) == (0, 4), body
    assert body["acceptedPerSecond"] == 0.0, body
    assert first["answeredPerSecond"] > 0 and body["answeredPerSecond"] > 0, body


def test_wait_follows_the_ads_of_the_first_ones_sent_and_counts_the_others(
        shared_lane: Lane, isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    """The ids ``--wait`` follows are kept for the first FOLLOWED_MAX ads sent (100,000; 3 here), not for every
    ad of an endless input: the others are counted as not followed, and the run is not a success (exit 1). The
    lane has no worker, so the followed ads stay pending until the short --timeout."""
    monkeypatch.setattr(sending_module, "FOLLOWED_MAX", 3)
    result = CliRunner().invoke(app, ["submit", "--count", "5", "--batch-size", "2", "--wait", "--timeout", "0.5",
                                      "-o", "json", "--api", shared_lane.url])
    assert result.exit_code == exitcodes.ERROR, result.output
    body = json.loads(result.stdout)
    assert body["accepted"] == 5 and body["notFollowed"] == 2 and body["pending"] == 3, body


def _text(summary: dict[str, object]) -> str:
    console = Console(width=160, record=True, color_system=None)
    console.print(summary_view(summary))
    return " ".join(console.export_text().split())


def test_the_text_summary_says_ads_past_the_cap_are_counted_not_listed() -> None:
    text = _text({"sent": 10_500, "accepted": 0, "duplicates": 0, "rejected": 10_500,
                  "rejectedByCode": {"validation_failed": 10_500},
                  "elapsedSeconds": 2.0, "ratePerSecond": 5250.0, "acceptedPerSecond": 0.0, "itemsOmitted": 500})
    assert "not listed 500 ads (the ads after the first 10,000: counted above" in text, text


def test_keep_first_keeps_the_smallest_indexes_whatever_order_they_come_in() -> None:
    kept: dict[int, str] = {}
    for index in [7, 3, 9, 1, 8, 2]:
        keep_first(kept, index, f"line {index}", 3)
    assert sorted(kept.items()) == [(1, "line 1"), (2, "line 2"), (3, "line 3")]


@pytest.mark.parametrize("verb", [["dlq", "export"], ["top", "--once", "--record"]])
def test_an_output_fifo_nothing_reads_is_refused_after_a_short_wait_said_once(
        tmp_path: Path, closed_api_url: str, verb: list[str]) -> None:
    """F9: blocked for ever with no word (``timeout 10 gamead top --once --record ff``: rc 124), while the verbs
    reading a FILE refuse a FIFO up front. Now it says it waits for a reader (a ``cmd FIFO & reader < FIFO`` may
    start either first), then one red line, exit 2, before the API is asked."""
    os.mkfifo(tmp_path / "ff")
    result = gamead(*verb, "ff", "--api", closed_api_url, cwd=tmp_path, timeout=60)
    assert result.returncode == exitcodes.USAGE, result.stderr
    waiting, refused = _ANSI.sub("", result.stderr).strip().splitlines()
    assert waiting == "waiting up to 5 s for a process to read the FIFO ff", waiting
    assert refused.startswith("error: ") and "ff: a FIFO that nothing reads" in refused, refused
    assert "start its reader first" in refused and "Traceback" not in result.stderr


def test_a_fifo_whose_reader_opens_it_after_the_writer_is_written(tmp_path: Path) -> None:
    """The refusal must not race a reader that starts a moment after the verb (under load, a test's reader
    thread did: "unexpected OSError" from a verb writing to a FIFO a reader was about to open)."""
    import threading

    from gamead_cli.atomic import PendingFile

    fifo = tmp_path / "later"
    os.mkfifo(fifo)
    got: list[str] = []
    reader = threading.Timer(0.3, lambda: got.append(fifo.read_text()))
    reader.start()
    pending = PendingFile(str(fifo))
    pending.file.write("one line\n")
    pending.commit()
    reader.join(timeout=30)
    assert got == ["one line\n"]
