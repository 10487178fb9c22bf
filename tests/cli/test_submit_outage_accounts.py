"""left39b item 1: a bulk ``gamead submit`` stopped by an outage past ``client.retry_for`` counted the ads it was
still resending (their last answer a certain store refusal, the next try not sent) as ``rejected`` with that code,
as if the API had turned them down for good: they were never queued and never sent again, so they are ``notSent``
(safe to resend, named with the rest), as the ads after them are; an ad whose request went out and got no answer is
"may be queued", settled by lookup. The run's every ad is in exactly one of accepted, duplicates, rejected,
queuedFound, notQueued, maybeQueued, notSent, in ``-o json`` and in the plain summary.

Real nats-server (frozen by SIGSTOP, by its PID, past ``client.retry_for``), a real API process and real ``gamead
submit`` processes."""

from __future__ import annotations

import json
import re
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from gamead_core.embedded import EmbeddedNats
from tests.forked_popen import GameadPopen
from tests.support import (
    Proc,
    clean_env,
    frozen,
    gamead_argv,
    killed_if_left,
    start_api,
    wait_for,
)

COUNT, RATE = 5000, 500
RETRY_FOR = 5.0  #: client.retry_for (seconds): the outage stops the run after it
FROZEN_FOR = 15.0  #: NATS frozen this long, well past RETRY_FOR (no state to wait on while it is: the fault's length)
#: the summary's fields that hold every ad once
BUCKETS = ("accepted", "duplicates", "queuedFound", "notQueued", "maybeQueued", "notSent")


def _queued_500(http: httpx.Client) -> bool:
    """Whether the API lists 500 ads (a page of 500) yet; a listing not answered within the client's timeout is no
    answer yet, asked again until the caller's deadline (fc60A, load 30-86: the page took past 10 s beside the run's
    500 ads/s and its ``httpx.ReadTimeout`` ended the test before the outage began)."""
    try:
        return bool(http.get("/ads", params={"limit": 500}).json()["count"] >= 500)
    except httpx.TimeoutException:
        return False


def _run(fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path, output: list[str]
         ) -> tuple[str, str, int]:
    server = fresh_nats()
    api, url = start_api(server.url, tmp_path, GAMEAD_API__PUBLISH_TIMEOUT="1")
    procs.append(api)
    err = tmp_path / "submit.err"
    with err.open("w") as sink:
        cli = GameadPopen(gamead_argv("submit", "--count", str(COUNT), "--rate", str(RATE), "--title", "Outage",
                                      "--genre", "RPG", "--api", url, *output),
                          env=clean_env(COLUMNS="400", GAMEAD_CLIENT__RETRY_FOR=str(RETRY_FOR)),
                          stdout=subprocess.PIPE, stderr=sink, stdin=subprocess.DEVNULL, text=True)
    with killed_if_left(cli):
        with httpx.Client(base_url=url, timeout=10) as http:
            wait_for(lambda: _queued_500(http) or cli.poll() is not None, timeout=60, what="some ads of the run queued")
        assert cli.poll() is None, err.read_text()
        assert server.proc is not None
        with frozen(server.proc.pid):
            threading.Event().wait(FROZEN_FOR)
        out, _ = cli.communicate(timeout=240)
    return out, " ".join(err.read_text().split()), cli.returncode


#: the plain summary's rows that hold every ad once (their first number)
ROWS = ("accepted", "duplicates", "rejected", "queued (found)", "not queued", "may be queued", "not sent")


@pytest.mark.parametrize("output", ["json", "table"])
def test_a_run_an_outage_stopped_counts_each_ad_once_and_none_it_was_resending_rejected(
        fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path, output: str) -> None:
    """5,000 ads at 500/s, NATS frozen 15 s (client.retry_for 5 s): the run stops at the outage's start + 5 s, as
    its line said; no ad is rejected — before: ``rejected`` {"storage_failing": 495} (json; the table alike), the
    ads of the batches being resent when the run stopped, each certainly unsent, and the stop itself came only once
    no request was out — those are ``notSent``, named (``notSentWhere``), with the ads never handed out, and the
    buckets add up to 5,000 in ``-o json`` and in the plain summary's rows."""
    out, said, code = _run(fresh_nats, procs, tmp_path, ["-o", output])
    assert "sending stopped" in said, said
    if output == "json":
        summary = json.loads(out)
        figures = {k: summary.get(k) for k in ("sent", "rejected", *BUCKETS, "notSentCaught", "stoppedByOutage")}
        assert summary["stoppedByOutage"] is True, (figures, said)
        assert summary["rejectedByCode"] == {}, figures
        assert len(summary["notSentWhere"]) >= 1 or not summary["notSentCaught"], figures
        assert sum(summary.get(k, 0) for k in BUCKETS) == COUNT, figures
    else:
        rows = {name: int(m[1].replace(",", "")) for name in ROWS  # 4,442: counts have separators (attack45 F8)
                for m in [re.search(rf"│ {re.escape(name)}\s+(\d[\d,]*)", out)] if m is not None}
        assert rows.get("rejected") == 0, out
        assert sum(rows.values()) == COUNT, (rows, out)
        assert re.search(r"not sent\s+[\d,]+ ads \(stopped: the API's store still refused every ad after "
                         r"client\.retry_for", out), out
    assert code == 1, said
