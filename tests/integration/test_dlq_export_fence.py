"""attack27 F5: `gamead dlq export` and `dlq list` paging while an ad is dead-lettered again between two pages (a
replay that dies again): its old entry, on a page already read, is gone; its new one is past the cursor. Real
nats-server and API; the second death is written by gamead's own DLQ code (``DeadLetters.add``), between pages."""

from __future__ import annotations

import asyncio
import json
import shlex
from pathlib import Path
from typing import Any

import nats
import pytest
from typer.testing import CliRunner

import gamead_cli.commands.dlq as dlq_commands
from gamead_cli.client import ApiClient
from gamead_cli.main import app as cli
from gamead_core.queue.dlq import DeadLetters
from tests.integration.dlq_lane import Lane, lane, made_up_entry  # noqa: F401 - lane is a fixture

AGAIN = "dead again after a replay"


async def _dead_again(nats_url: str, ad_id: str) -> int:
    """The ad's entry replaced by a newer one (a second death after a replay), as a worker writes it: the old
    entry is gone (one entry per ad), the new one is the DLQ's last. Returns its sequence."""
    nc = await nats.connect(nats_url)
    try:
        dlq = DeadLetters(nc.jetstream())
        old = await dlq.get(ad_id)
        seq, _ = await dlq.add(old.model_copy(update={"error_message": AGAIN, "replays": 1, "seq": None}),
                               dedupe=False)
        return seq
    finally:
        await nc.close()


def _dlq_of(there: Lane, n: int) -> list[str]:
    """``n`` made-up dead ads, in DLQ order."""
    entries = [made_up_entry(f"Fenced {i}", priority=3) for i in range(n)]
    assert there.run_job("/v1/dlq/import", {"entries": entries})["counts"]["imported"] == n
    return [e["adId"] for e in there.dlq()["items"]]


def _after_first_page(monkeypatch: pytest.MonkeyPatch, then: Any) -> None:
    """Run ``then()`` once, right after the CLI's first ``GET /v1/dlq`` page (cursor 0) is answered."""
    original = ApiClient.request
    done: list[bool] = []

    def request(self: ApiClient, method: str, path: str, **kw: Any) -> Any:
        body = original(self, method, path, **kw)
        if path == "/v1/dlq" and not (kw.get("params") or {}).get("cursor") and not done:
            done.append(True)
            then()
        return body

    monkeypatch.setattr(ApiClient, "request", request)


def test_an_ad_dead_again_during_an_export_is_written_once_with_its_newest_entry(
    lane: Lane, tmp_path: Path, monkeypatch: pytest.MonkeyPatch  # noqa: F811 - the fixture
) -> None:
    ids = _dlq_of(lane, 5)
    monkeypatch.setattr(dlq_commands, "EXPORT_PAGE", 2)  # pages of 2: the first holds ids[0]
    _after_first_page(monkeypatch, lambda: asyncio.run(_dead_again(lane.nats.url, ids[0])))
    dump = tmp_path / "during.jsonl"
    done = CliRunner().invoke(cli, ["dlq", "export", str(dump), "--api", lane.url])
    assert done.exit_code == 0, done.output
    lines = [json.loads(line) for line in dump.read_text().splitlines()]
    assert sorted(e["adId"] for e in lines) == sorted(ids), lines  # each ad once
    (again,) = [e for e in lines if e["adId"] == ids[0]]
    assert again["errorMessage"] == AGAIN and again["replays"] == 1  # its newest entry, the one in the DLQ now
    said = " ".join(done.stderr.split())
    assert "exported 5 entries to" in said and "1 ad changed during the export" in said, said


def test_an_export_to_stdout_writes_such_an_ad_once_and_says_it_is_not_a_snapshot(
    lane: Lane, monkeypatch: pytest.MonkeyPatch  # noqa: F811 - the fixture
) -> None:
    ids = _dlq_of(lane, 3)
    monkeypatch.setattr(dlq_commands, "EXPORT_PAGE", 2)
    _after_first_page(monkeypatch, lambda: asyncio.run(_dead_again(lane.nats.url, ids[0])))
    done = CliRunner().invoke(cli, ["dlq", "export", "-", "--api", lane.url])
    assert done.exit_code == 0, done.output
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert sorted(e["adId"] for e in lines) == sorted(ids), lines  # a line on stdout cannot be taken back: the first
    said = " ".join(done.stderr.split())
    assert "1 ad changed during the export" in said and "not a consistent snapshot" in said, said
    assert f"exported {len(lines)} entries to stdout" in said, said  # words58: `export FILE`'s line, none before


def test_dlq_list_pages_show_an_ad_dead_again_meanwhile_once(lane: Lane) -> None:  # noqa: F811 - the fixture
    """The printed next-page command carries the first page's fence (--until-seq): the ad's new entry, past it,
    does not come back on a later page (before: 23 pages, 450 rows, 307 distinct ads during a replay)."""
    ids = _dlq_of(lane, 5)
    argv, shown = ["dlq", "list", "-n", "2", "--api", lane.url], []
    for page in range(6):
        out = CliRunner().invoke(cli, argv, env={"COLUMNS": "300"})
        assert out.exit_code == 0, out.output
        shown += [i for line in out.stdout.splitlines() for i in ids if i in line.split()[:1]]
        if page == 0:
            asyncio.run(_dead_again(lane.nats.url, ids[0]))
        last = out.stdout.strip().splitlines()[-1]
        if "--cursor" not in last:
            break
        argv = shlex.split(last)[1:]
    assert sorted(shown) == sorted(ids), shown  # every ad once; ids[0] shown on the first page only
    fenced = lane.http.get("/v1/dlq", params={"untilSeq": 0}).json()  # the fence as the API's: nothing at or below 0
    assert fenced["items"] == [] and fenced["untilSeq"] == 0 and fenced["inDlq"] == 5, fenced
