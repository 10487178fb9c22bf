"""Who the client is, and the audit trail's bound on refusals (attack31b F8, F6).

F8: refusals were throttled per caller only, and in open mode a caller is its address: one process rotating its
source address over 127.0.0.0/8, or a trusted peer's ``X-Forwarded-For``, got one record (and one log line) per
refused request and pushed the whole trail out in minutes. Now all callers together get ``audit.node_refusals`` per
``audit.node_refusals_window`` on a node, the rest counted in one ``refusals_suppressed`` record per window.

F6: a trusted peer's ``X-Forwarded-For`` entry became the ``client`` verbatim (a name, 12,000 characters, C1
controls). Now only an address is taken; an entry that is not one ends the walk at the proxy that wrote it.

A real ``gamead serve`` in open mode (no tokens, on loopback) on a real nats-server; raw sockets bound to rotating
``127.x.y.z`` source addresses, as the drill did.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gamead_core.embedded import EmbeddedNats
from tests.support import Proc, start_api, wait_for

#: a write the API refuses (405) in open mode: an ``other refused`` record each time
REFUSED = "PUT /v1/jobs/01m8ynvtych86ny5jnpvhfjq8g HTTP/1.1\r\nHost: x\r\nX-Request-Id: {rid}\r\n{extra}"
CAP, WINDOW = 5, 10  #: audit.node_refusals per audit.node_refusals_window (s) of the flood's API


@pytest.fixture(scope="module")
def nats_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = EmbeddedNats(tmp_path_factory.mktemp("nats-auditflood")).start()
    try:
        yield server.url
    finally:
        server.stop()


@contextlib.contextmanager
def api(nats_url: str, logs: Path, **env: str) -> Iterator[tuple[Proc, str]]:
    proc, url = start_api(nats_url, logs, **env)
    try:
        yield proc, url
    finally:
        proc.stop()


def refuse(url: str, rid: str, *, source: str = "127.0.0.1", forwarded: bytes | None = None) -> bytes:
    """One refused write on a new connection from ``source`` (with ``X-Forwarded-For: forwarded``); its status line."""
    port = int(url.rsplit(":", 1)[1])
    extra = b"" if forwarded is None else b"X-Forwarded-For: " + forwarded + b"\r\n"
    with socket.socket() as s:
        s.bind((source, 0))
        s.settimeout(15)
        s.connect(("127.0.0.1", port))
        s.sendall(REFUSED.format(rid=rid, extra="").encode() + extra + b"Connection: close\r\n\r\n")
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    return answer.split(b"\r\n", 1)[0]


def trail(url: str) -> list[dict[str, Any]]:
    resp = httpx.get(f"{url}/v1/audit", params={"limit": 500}, timeout=15)
    assert resp.status_code == 200, resp.text
    return list(resp.json()["items"])


def test_refusals_from_rotating_addresses_fill_at_most_the_nodes_bound_and_one_summary_counts_the_rest(
        nats_url: str, tmp_path: Path) -> None:
    """200 refused writes, each from a caller never seen before (100 source addresses 127.1.x.y, 100
    ``X-Forwarded-For: 10.7.x.y`` over one keep-alive connection): the trail holds at most ``audit.node_refusals``
    of them per window and one ``refusals_suppressed`` record that counts the rest; every refusal is in one or the
    other. Before, 200 records (the drill: 2,000 in 1.2 s)."""
    with api(nats_url, tmp_path, GAMEAD_AUDIT__NODE_REFUSALS=str(CAP),
             GAMEAD_AUDIT__NODE_REFUSALS_WINDOW=str(WINDOW)) as (proc, url):
        for i in range(100):
            assert refuse(url, f"flood-{i}", source=f"127.1.{i >> 8 & 255}.{(i & 255) + 1}").startswith(b"HTTP/1.1 405")
        with httpx.Client(base_url=url, timeout=15) as keep:  # one connection from 127.0.0.1, a trusted peer
            for i in range(100, 200):
                answer = keep.put("/v1/jobs/01m8ynvtych86ny5jnpvhfjq8g",
                                  headers={"X-Forwarded-For": f"10.7.{i >> 8}.{i & 255}", "X-Request-Id": f"flood-{i}"})
                assert answer.status_code == 405
        sent = {f"flood-{i}" for i in range(200)}

        def summarised() -> list[dict[str, Any]] | None:
            records = trail(url)
            summaries = [r for r in records if r["action"] == "refusals_suppressed"]
            one_by_one = [r for r in records if r.get("requestId") in sent]
            counted = sum(r["repeats"] for r in summaries) + len(one_by_one)
            return records if summaries and counted == len(sent) else None

        records = wait_for(summarised, timeout=WINDOW * 6, interval=0.5,
                           what="the refusals_suppressed record counting every refusal not recorded")
        summaries = [r for r in records if r["action"] == "refusals_suppressed"]
        one_by_one = [r for r in records if r.get("requestId") in sent]
        # each window whose bound was spent says so once; only the last one may have had no refusal left out
        assert len(one_by_one) <= CAP * (len(summaries) + 1) and len(records) == len(one_by_one) + len(summaries)
        top = summaries[0]
        assert (top["outcome"], top["code"], top["actor"]) == ("refused", "refusals_suppressed", "anonymous")
        assert top["details"]["limit"] == CAP and top["details"]["window"] == WINDOW
        assert top["details"]["byCode"] == {"method_not_allowed": top["repeats"]}
        assert "not recorded one by one" in top["message"] and "audit.node_refusals" in top["message"]
        for record in records:  # every client an address: a rotating one or an X-Forwarded-For one
            assert ipaddress.ip_address(record["client"]).is_loopback or record["client"].startswith("10.7.")
        lines = [json.loads(line) for line in proc.output().splitlines() if line.startswith("{")]
        audit_lines = [line for line in lines if line.get("logger") == "gamead.audit"]
        assert len(audit_lines) == len(records)  # one log line a record, no more


@pytest.fixture(scope="module")
def plain_api(nats_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Proc, str]]:
    """An API with the default bounds (a few refusals from one caller are all recorded)."""
    with api(nats_url, tmp_path_factory.mktemp("plain-api")) as started:
        yield started


@pytest.mark.parametrize(("forwarded", "client"), [
    (b"forged-admin.example", "127.0.0.1"),
    (b"A" * 12000, "127.0.0.1"),
    (b"\xc2\x9b31m\xe2\x80\xa8 x", "127.0.0.1"),
    (b"10.9.8.7, unknown", "127.0.0.1"),  # not an address at the right end: nothing left of it is believed
    (b"forged, 10.9.8.7", "10.9.8.7"),
    (b"[2001:db8::7]:4711", "2001:db8::7"),
    (b"fe80::1%eth0", "fe80::1"),
    (b"::ffff:10.1.2.3", "10.1.2.3"),
    (b"10.9.8.7, ::1", "10.9.8.7"),  # ::1 is a trusted proxy (FORWARDED_ALLOW_IPS' default)
])
def test_a_forwarded_entry_that_is_not_an_address_never_becomes_the_client(
        plain_api: tuple[Proc, str], forwarded: bytes, client: str) -> None:
    """A trusted peer's ``X-Forwarded-For`` names the client only with an address: the audit record's ``client`` and
    its log line's are an address of at most 39 characters (before: the header's text verbatim, 12,000 characters,
    C1 controls)."""
    proc, url = plain_api
    rid = "xff-" + hashlib.sha256(forwarded).hexdigest()[:12]
    assert refuse(url, rid, forwarded=forwarded).startswith(b"HTTP/1.1 405")
    record = wait_for(lambda: next((r for r in trail(url) if r.get("requestId") == rid), None),
                      what="the refusal's record")
    assert record["client"] == client
    line = wait_for(lambda: next((json.loads(x) for x in proc.output().splitlines()
                                  if x.startswith("{") and rid in x and '"gamead.audit"' in x), None),
                    what="the record's log line")
    assert line["client"] == client and len(json.dumps(line)) < 1000  # the 12,000-character one was 12,381 bytes


def test_a_node_stopped_within_its_window_writes_the_pending_summary_first(nats_url: str, tmp_path: Path) -> None:
    """review31 R8: the refusals a window left out were written only at the next refusal after it or by a timer, so
    a node stopped (a rolling restart) within an hour-long window left no trace of them. Now its shutdown writes
    the pending ``refusals_suppressed`` record first."""
    with api(nats_url, tmp_path, GAMEAD_AUDIT__NODE_REFUSALS="2", GAMEAD_AUDIT__NODE_REFUSALS_WINDOW="3600") as (
            proc, url):
        for i in range(7):
            assert refuse(url, f"restart-{i}", source=f"127.2.0.{i + 1}").startswith(b"HTTP/1.1 405")
        proc.stop()  # SIGTERM: a graceful stop, within the window
    with api(nats_url, tmp_path / "after") as (_, after):
        summaries = [r for r in trail(after) if r["action"] == "refusals_suppressed"
                     and r["details"].get("window") == 3600]
    assert summaries and summaries[0]["repeats"] == 5, summaries  # 7 refused, 2 recorded one by one
