"""Drill attack31b F3: a DLQ message that is not an entry was counted in `inDlq` (and the listing's total) but shown
by neither `GET /v1/dlq` nor `gamead dlq list`, so an operator could not see what the doctor named. The page names
it (`unreadable`: `{seq, adId}`) and `dlq list` says it with the command that removes it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import nats
import pytest
from typer.testing import CliRunner

from gamead_cli.main import app
from gamead_core import names
from gamead_core.ad_ids import new_ad_id
from gamead_core.embedded import EmbeddedNats
from tests.support import Proc, start_api

pytestmark = pytest.mark.usefixtures("isolated_env")


async def _garbage(url: str, ad_id: str) -> int:
    nc = await nats.connect(url)
    try:
        ack = await nc.jetstream().publish(names.dlq_subject(ad_id), b"\x1b[31m{garbage",
                                           headers={names.HDR_AD_ID: ad_id})
        return int(ack.seq)
    finally:
        await nc.close()


def test_dlq_list_names_an_entry_it_cannot_read_with_the_command_that_removes_it(
        runner: CliRunner, fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    server = fresh_nats()
    proc, url = start_api(server.url, tmp_path)
    procs.append(proc)
    ad_id = new_ad_id()
    seq = asyncio.run(_garbage(server.url, ad_id))
    doc = json.loads(runner.invoke(app, ["dlq", "list", "-o", "json", "--api", url]).stdout)
    assert doc["inDlq"] == 1 and doc["items"] == [] and doc["unreadable"] == [{"seq": seq, "adId": ad_id}], doc
    listed = runner.invoke(app, ["dlq", "list", "--api", url])
    assert listed.exit_code == 0, listed.output
    said = " ".join(listed.stdout.split())
    assert f"1 entry cannot be read as a DLQ entry (not shown; DLQ seq {seq}): remove with gamead dlq purge {ad_id} " \
           "--yes" in said, said
    assert runner.invoke(app, ["dlq", "purge", ad_id, "--yes", "--api", url]).exit_code == 0  # as it says
    assert json.loads(runner.invoke(app, ["dlq", "list", "-o", "json", "--api", url]).stdout)["inDlq"] == 0
