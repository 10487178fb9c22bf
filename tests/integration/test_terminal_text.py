"""Text from clients never restyles an operator's terminal; no check names a server (brief text13), on a real API,
nats-server and valkey-server.

The attacker's inputs, as found on a fresh clone: ``POST /ads`` with a title ``A\\u009b31mRED\\u009b0m`` (C1 CSI:
xterm reads ``ESC [ 31 m``) or ``X\\u009d8;;http://evil\\u009cLINK\\u009d8;;\\u009c`` (OSC 8: a planted link) was
202, and ``gamead ads list/get`` and ``dlq list/show`` printed the bytes raw; ``kill -STOP`` of Valkey made
``/readyz`` say ``"redis": "degraded: Timeout reading from 127.0.0.1:<port> (circuit open)"``.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
from typer.testing import CliRunner

from gamead_cli.main import app as cli
from gamead_core import names
from gamead_core.ad_ids import new_ad_id
from gamead_core.embedded import EmbeddedNats
from tests.integration.dlq_lane import Lane, lane, made_up_entry  # noqa: F401 - the lane fixture
from tests.redis_fixtures import ValkeyProc
from tests.support import Proc, ad, frozen, start_api, wait_for

CSI_TITLE = "A\u009b31mRED\u009b0m"
OSC_TITLE = "X\u009d8;;http://evil\u009cLINK\u009d8;;\u009c"
#: every character the API now refuses in client text, as (text, the code point its error names)
REFUSED = [(CSI_TITLE, "U+009B"), (OSC_TITLE, "U+009D"), ("txt\u202eexe.", "U+202E"),
           ("a\u2066b\u2069", "U+2066"),
           ("a\u0085b", "U+0085"), ("a\x1b[31m", "U+001B"), ("a\x7f", "U+007F")]
#: what legitimate text needs, kept: emoji with joiners, combining marks, RTL script with its marks, ZWSP (Thai)
ACCEPTED = ["👩\u200d💻 Dev Quest", "Cafe\u0301 Rush", "مرحبا بالعالم\u200f!", "สวัสดี\u200bเกม", "x\ufeffy",
            "Line\u2028Break", "🏴\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f Flags"]
RAW = re.compile("[\x80-\x9f\u202a-\u202e\u2066-\u2069\x1b]")


def _refused(resp: httpx.Response, loc: str, point: str) -> None:
    assert resp.status_code == 422, resp.text[:300]
    error = resp.json()["error"]
    assert error["code"] == "validation_failed", error
    assert any(d["loc"] == loc and point in d["msg"] for d in error["details"]), error


def test_every_client_text_field_refuses_terminal_and_bidi_controls(lane: Lane) -> None:  # noqa: F811
    for text, point in REFUSED:
        _refused(lane.http.post("/ads", json=ad(text)), "title", point)
        _refused(lane.http.post("/ads", json=ad("Fine", description=f"d {text}")), "description", point)
        _refused(lane.http.post("/ads", json=ad("Fine", targetAudience=["ok", text])), "targetAudience.1", point)
        batch = lane.http.post("/ads/batch", json={"ads": [ad("Fine"), ad("Fine", callToAction=text)]})
        assert batch.status_code in (200, 207), batch.text[:300]
        item = batch.json()["results"][1]
        assert item["error"]["code"] == "validation_failed", item
        assert any(d["loc"] == "callToAction" and point in d["msg"] for d in item["error"]["details"]), item
        entry = made_up_entry("Fine")
        _refused(lane.http.post("/v1/dlq/import", json={"entries": [{**entry, "errorMessage": f"boom {text}"}]}),
                 "entries.0.errorMessage", point)
        bad_title = {**entry, "title": text, "ad": {**entry["ad"], "title": text}}
        _refused(lane.http.post("/v1/dlq/import", json={"entries": [bad_title]}), "entries.0.title", point)
    for key, point in (("k\u009b1", "U+009B"), ("k\u202e1", "U+202E")):  # sent as UTF-8 bytes
        resp = lane.http.post("/ads", json=ad("Keyed"), headers={"Idempotency-Key": key.encode()})
        # the key's own rule (printable ASCII, the draft's sf-string) refuses it first, naming the character
        assert resp.status_code == 400, resp.text[:300]
        assert resp.json()["error"]["code"] == "invalid_idempotency_key" and point in resp.json()["error"]["message"]
        batch = lane.http.post("/ads/batch", json={"ads": [{**ad("Keyed"), "idempotencyKey": key}]}).json()
        assert point in json.dumps(batch["results"][0]["error"]), batch
    _refused(lane.http.post("/v1/dlq/replay", json={"filter": {"errorClass": "A\u009b"}, "dryRun": True}),
             "errorClass", "U+009B")
    for text in ACCEPTED:
        resp = lane.http.post("/ads", json=ad(text))
        assert resp.status_code == 202, (text, resp.text[:300])
        assert lane.http.get(f"/ads/{resp.json()['id']}").json()["ad"]["title"] == text


async def _write_raw(nats_url: str, ad_id: str, record: dict[str, Any], entry: dict[str, Any] | None) -> None:
    """What an older gamead stored, written as it was (no API between): the ad's record, and its DLQ entry."""
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        await js.publish(names.kv_subject(names.ADS_BUCKET, ad_id), json.dumps(record).encode())
        if entry is not None:
            await js.publish(names.dlq_subject(ad_id), json.dumps(entry).encode())
    finally:
        await nc.close()


def _cli(target: Lane, *args: str) -> str:
    result = CliRunner().invoke(cli, [*args, "--api", target.url], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result.stdout


def test_text_stored_before_the_rule_is_shown_escaped_by_every_command(lane: Lane) -> None:  # noqa: F811
    ad_id, now = new_ad_id(), datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
    body = {**ad(CSI_TITLE), "description": f"see {OSC_TITLE} and txt\u202eexe.", "targetAudience": ["a\u2066b"]}
    record = {"id": ad_id, "status": "dead", "priority": 3, "submittedAt": now, "ad": body, "attempts": 1,
              "completedAt": now, "error": {"errorClass": "Boom", "message": f"bad {CSI_TITLE}", "retryable": False}}
    entry = {"adId": ad_id, "title": CSI_TITLE, "priority": 3, "attempts": 1, "errorClass": "Boom",
             "errorMessage": f"bad {OSC_TITLE}", "retryable": False, "firstFailureAt": now, "lastFailureAt": now,
             "deadAt": now, "submittedAt": now, "ad": body}
    asyncio.run(_write_raw(lane.nats.url, ad_id, record, entry))
    assert lane.http.get(f"/ads/{ad_id}").json()["ad"]["title"] == CSI_TITLE  # still reads, as stored
    wait_for(lambda: any(e["adId"] == ad_id for e in lane.dlq()["items"]), what="the older entry listed")
    shown = {"ads get": _cli(lane, "ads", "get", ad_id), "ads list": _cli(lane, "ads", "list"),
             "dlq list": _cli(lane, "dlq", "list"), "dlq show": _cli(lane, "dlq", "show", ad_id)}
    for command, out in shown.items():
        assert not RAW.search(out), (command, out)
        assert "\\u009b" in out, (command, out)
    assert "a\\u2066b" in shown["ads get"]  # a tag: the isolate shown, not obeyed
    assert "\\u009d8;;http://evil\\u009c" in shown["dlq show"] + shown["dlq list"]
    assert json.loads(_cli(lane, "ads", "get", ad_id, "-o", "json"))["ad"]["title"] == CSI_TITLE  # JSON: as stored


@pytest.fixture
def redis_api(fresh_valkey: Any, procs: list[Proc], tmp_path: Path,
              fresh_nats: Any) -> Iterator[tuple[ValkeyProc, str]]:
    server: ValkeyProc = fresh_valkey()
    nats_server: EmbeddedNats = fresh_nats()
    api, url = start_api(nats_server.url, tmp_path, GAMEAD_REDIS__URL=server.url, GAMEAD_REDIS__BREAKER_RESET="0.5",
                         GAMEAD_REDIS__SOCKET_TIMEOUT="0.5", GAMEAD_REDIS__CONNECT_TIMEOUT="0.5")
    procs.append(api)
    yield server, url


def _said(url: str) -> tuple[str, dict[str, Any]]:
    """``/readyz``'s redis check and ``/v1/stats``'s redis section."""
    check = httpx.get(f"{url}/readyz", timeout=5).json()["checks"]["redis"]
    return check, httpx.get(f"{url}/v1/stats", timeout=5).json()["redis"]


def _names_no_server(text: str, server: ValkeyProc) -> None:
    assert server.host not in text and str(server.port) not in text and "redis://" not in text, text


def test_readyz_and_stats_say_what_failed_without_naming_the_redis_server(redis_api: tuple[ValkeyProc, str]) -> None:
    server, url = redis_api
    assert _said(url)[0] == "ok"
    assert server.proc is not None
    with frozen(server.proc.pid):  # kill -STOP
        check, stats = wait_for(lambda: (s := _said(url))[0].startswith("degraded") and s, timeout=15,
                                what="redis degraded while stopped")
        # in words (timed out, or connection lost when a loaded machine's reconnect saw it first): no address
        # (circuit open, or half-open when its probe is out: on a loaded machine the check may read it then)
        assert re.fullmatch(r"degraded: [a-z ]+ \(circuit (half-)?open\)", check), check
        _names_no_server(f"{check} {stats['status']} {stats['breaker']['reason']}", server)
    wait_for(lambda: _said(url)[0] == "ok", timeout=15, what="redis back after SIGCONT")
    server.kill()  # kill -9
    check, stats = wait_for(lambda: "refused" in (s := _said(url))[0] and s, timeout=15, what="connection refused")
    assert check.startswith("degraded: cannot connect: connection refused"), check
    _names_no_server(f"{check} {stats['status']} {stats['breaker']['reason']}", server)
