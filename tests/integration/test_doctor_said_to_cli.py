"""What ``gamead doctor`` says to a CLI user, on a real API and nats-server (leftout60):

* its check (up to doctor.scan_time, 60 s) said nothing to a stderr that is no terminal (a CI log, a pipe) until it
  ended: it now says where it stands in plain lines (one every ``PLAIN_EVERY`` s, 0 here so that each tick says
  one), then its end, on stderr; ``-o json``'s stdout holds the one report still;
* its findings named the API's paths (``GET /ads/{id} then answers it``): printed, they name the gamead command
  (``gamead ads get ID --api …``), while ``GET /v1/doctor`` keeps the API's words for API clients."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
from typer.testing import CliRunner

from gamead_cli import output
from gamead_cli.main import app
from gamead_core import names
from gamead_core.embedded import EmbeddedNats
from tests.support import Proc, start_api, submission

OPERATOR = "op-token-said"
TOKENS = json.dumps([{"name": "op", "token": OPERATOR, "role": "operator"}])


def _broken(fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path) -> tuple[str, str, str]:
    """An API on its own nats-server with two findings: a DLQ entry of an ad with no record
    (``entry_without_record``: ``GET /ads/{id}`` in its repair) and a record whose body names another ad
    (``record_key_mismatch``: ``GET /ads/ID`` in its detail). → (API URL, the entry's ad, the record's key)."""
    from gamead_core.ad_ids import new_ad_id
    from gamead_core.doctor.repair import entry_from_record
    from gamead_core.models import AdRecord, AdStatus, utcnow
    from gamead_core.queue.dlq import DeadLetters
    from gamead_core.store.ads import encode

    server = fresh_nats()
    api, url = start_api(server.url, tmp_path, GAMEAD_AUTH__TOKENS=TOKENS)
    procs.append(api)
    orphan, key = new_ad_id(), new_ad_id()

    async def main() -> None:
        nc = await nats.connect(server.url)
        js = nc.jetstream()
        try:
            dead = AdRecord(id=orphan, status=AdStatus.DEAD, priority=3, submitted_at=utcnow(),
                            completed_at=utcnow(), ad=submission())
            await DeadLetters(js).add(entry_from_record(dead), dedupe=False)
            other = AdRecord(id=new_ad_id(), status=AdStatus.QUEUED, priority=3, submitted_at=utcnow(),
                             ad=submission())
            await js.publish(f"{names.kv_prefix(names.ADS_BUCKET)}{key}", encode(other))
        finally:
            await nc.close()

    asyncio.run(main())
    return url, orphan, key


def _doctor(url: str, *args: str) -> Any:
    return CliRunner().invoke(app, ["doctor", "--api", url, *args], env={"GAMEAD_TOKEN": OPERATOR})


def test_findings_name_the_gamead_command_and_the_api_keeps_its_words(
        fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path) -> None:
    url, orphan, key = _broken(fresh_nats, procs, tmp_path)
    done = _doctor(url, "--settle", "0")
    assert done.exit_code == 1, done.output
    said = " ".join(done.stdout.split())
    assert orphan in said and key in said, said  # both findings printed
    assert not re.search(r"/v1/|GET /|(?<![\w/])/ads/", said.replace(url, "")), said  # before: 2 paths
    assert f"ads get ID --api {url} then answers it" in said, said  # the repair's words
    assert f"ads get {key} --api {url} answers that ad" in said, said  # the detail's
    report = httpx.get(f"{url}/v1/doctor", params={"settle": 0},
                       headers={"Authorization": f"Bearer {OPERATOR}"}, timeout=60).json()
    repairs = {f["kind"]: f for f in report["findings"]}
    assert "GET /ads/{id}" in repairs["entry_without_record"]["repair"]  # an API client reads the API's words
    assert f"GET /ads/{key}" in repairs["record_key_mismatch"]["details"][key]


def test_a_check_to_a_log_says_where_it_stands_and_its_end(
        fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    url, orphan, _ = _broken(fresh_nats, procs, tmp_path)
    monkeypatch.setattr(output, "PLAIN_EVERY", 0.0)
    done = _doctor(url, "--settle", "1s", "-o", "json")  # a finding is seen twice, 1 s apart: the check lasts
    assert done.exit_code == 1, done.output
    report = json.loads(done.stdout)  # one document: no progress on stdout
    assert orphan in {ad for f in report["findings"] for ad in f["sample"]}, report
    lines = [line for line in done.stderr.splitlines() if " · " in line]
    assert lines and lines[0].startswith("checking every invariant · "), done.stderr  # before: none
    assert lines[-1].startswith("checked every invariant · "), lines  # its end
    assert "Traceback" not in done.stderr and "error:" not in done.stderr, done.stderr
