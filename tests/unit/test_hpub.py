"""A JetStream write of the submit path (gamead_core.queue.hpub.send) puts in nats-py's buffer the very bytes
``nc.publish`` puts there, counts it as nats-py does, and is refused by the write guard as a publish is; real
nats-server (issue 14.4)."""

from __future__ import annotations

import asyncio

import pytest

from gamead_core.config import NatsSettings
from gamead_core.embedded import EmbeddedNats
from gamead_core.queue import hpub
from gamead_core.queue.connection import connect
from gamead_core.queue.liveness import PublishRefused, guard_writes

CASES = [
    ("$KV.ads.01jdsample0000000000000000", b'{"id":"x"}', {"Nats-Expected-Last-Subject-Sequence": "0",
                                                             "Gamead-Origin": "api host-1 4711"}),
    ("gamead.ads.p1", b"x" * 700, {"Nats-Msg-Id": "01jd", "Gamead-Ad-Id": "01jd", "Gamead-Record-Revision": "12"}),
    ("gamead.ads.p1", b"", {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}),
    # what nats-py rewrites: handed to it, so the same bytes still
    ("gamead.ads.p1", b"p", {"Padded": " v ", "Line": "a\r\nb", "Empty": "", " Name ": "v", "Accent": "é"}),
    ("gamead.ads.p1", b"p", {}),
    # one unusual header alone (joined with plain ones it hid in the fallback they forced: review33 hpub F1/F3): a
    # CR LF inside a value must not become a header line of its own (nats-py turns it into spaces)
    ("gamead.ads.p1", b"p", {"Gamead-Origin": "api h 1\r\nNats-Msg-Id: evil"}),
    ("gamead.ads.p1", b"p", {"Gamead-Origin": "api h 1", "Gamead-Ad-Id": "a: b"}),
    # checked header by header (cpuapi48): a plain header before or after one nats-py rewrites hides nothing
    ("gamead.ads.p1", b"p", {"Nats-Msg-Id": "01jd", "Gamead-Origin": "a\tb"}),
    ("gamead.ads.p1", b"p", {"Gamead-Origin": "v\x7f", "Nats-Msg-Id": "01jd"}),
    ("gamead.ads.p1", b"p", {"Nats-Msg-Id": "01jd", "Gamead-Ad-Id": " 01jd"}),
    ("gamead.ads.p1", b"p", {"Nats-Msg-Id": "01jd", "Gamead-Ad-Id": "01jd\n"}),
    ("gamead.ads.p1", b"p", {"Nats-Msg-Id": "01jd", "Gamead-Ad-Id": "x"}),  # names remembered: checked again
]


def test_the_bytes_counters_and_messages_are_nats_pys(nats_server: EmbeddedNats) -> None:
    async def run() -> None:
        nc = await connect(NatsSettings(), nats_server.url, name="hpub-test")
        try:
            loop = asyncio.get_running_loop()
            sub = await nc.subscribe("gamead.ads.p1")
            for subject, payload, headers in CASES:
                reply = nc.new_inbox() + ".7"
                before, counted = len(nc._pending), [dict(nc.stats)]
                await nc.publish(subject, payload, reply=reply, headers=headers)  # no await in between: not flushed
                theirs = nc._pending[before:]
                counted.append(dict(nc.stats))
                await hpub.send(nc, subject, payload, reply, headers, loop)
                counted.append(dict(nc.stats))
                assert nc._pending[before + len(theirs):] == theirs, (subject, headers)
                assert [{k: b[k] - a[k] for k in a} for a, b in zip(counted, counted[1:])] == 2 * [
                    {k: 0 for k in counted[0]} | {"out_msgs": 1, "out_bytes": len(payload)}]
                if subject == "gamead.ads.p1":  # both delivered, alike
                    first, second = await sub.next_msg(timeout=5), await sub.next_msg(timeout=5)
                    assert (first.data, first.headers, first.reply) == (second.data, second.headers, second.reply)
        finally:
            await nc.close()

    asyncio.run(run())


def test_over_the_write_guards_bound_it_is_refused_unsent(nats_server: EmbeddedNats) -> None:
    async def run() -> None:
        nc = await connect(NatsSettings(), nats_server.url, name="hpub-guard")
        try:
            guard_writes(nc, 256)
            before = len(nc._pending)
            with pytest.raises(PublishRefused):
                await hpub.send(nc, "gamead.ads.p1", b"x" * 300, "_INBOX.r.1", {"Nats-Msg-Id": "a"},
                                asyncio.get_running_loop())
            assert len(nc._pending) == before
        finally:
            await nc.close()

    asyncio.run(run())


def test_a_header_name_nats_py_refuses_is_refused_alike(nats_server: EmbeddedNats) -> None:
    """A name holding CR LF and another header (``X: y\r\nNats-Expected-Last-Subject-Sequence``) is refused by
    nats-py (BadHeaderError); written raw it would have set the compare-and-set header (review33 hpub F1)."""
    async def run() -> None:
        nc = await connect(NatsSettings(), nats_server.url, name="hpub-names")
        try:
            guard_writes(nc, 1 << 20)
            bad = {"X: y\r\nNats-Expected-Last-Subject-Sequence": "1"}
            with pytest.raises(Exception) as theirs:
                await nc.publish("gamead.ads.p1", b"p", reply="_INBOX.r.1", headers=bad)
            before = len(nc._pending)
            with pytest.raises(type(theirs.value)):
                await hpub.send(nc, "gamead.ads.p1", b"p", "_INBOX.r.1", bad, asyncio.get_running_loop())
            assert len(nc._pending) == before
        finally:
            await nc.close()

    asyncio.run(run())


def test_a_lone_write_is_delivered_without_another_publish_to_flush_it(nats_server: EmbeddedNats) -> None:
    """The flusher is kicked as nats-py's own publish kicks it (its flush queue holds a request once the write is
    in the buffer): without the kick a lone write waited 2.4 s, 7.6 s, then more than 10 s for some other
    publish (review33 hpub F2)."""
    async def run() -> None:
        nc = await connect(NatsSettings(), nats_server.url, name="hpub-lone")
        try:
            guard_writes(nc, 1 << 20)
            sub = await nc.subscribe("gamead.ads.p2")
            await nc.flush()
            await hpub.send(nc, "gamead.ads.p2", b"lone", "_INBOX.r.2", {"Nats-Msg-Id": "lone"},
                            asyncio.get_running_loop())
            assert nc._pending and not nc._flush_queue.empty()  # in the buffer, the flusher asked (no await since)
            assert (await sub.next_msg(timeout=10)).data == b"lone"
        finally:
            await nc.close()

    asyncio.run(run())


def test_lines_written_ahead_are_the_checks_own() -> None:
    """The submit path's two writes send header lines worked out ahead (cpuapi48): the create's once per origin, the
    message's from its id and revision. They are what hpub's own check writes for the same headers, and an id that is
    not letters and digits is left to that check."""
    from gamead_core.ad_ids import new_ad_id
    from gamead_core.queue.publish import id_lines
    from gamead_core.store.write_heads import create_heads, write_headers

    for origin in ("api host-1 4711 01jd", None):
        headers, lines = create_heads(origin)
        assert headers == write_headers(0, None, origin=origin) and lines == hpub.plain_lines(headers)
        assert create_heads(origin)[0] is headers  # made once
    ad_id = new_ad_id()
    assert id_lines(ad_id, 12) == hpub.plain_lines({"Nats-Msg-Id": ad_id, "Gamead-Ad-Id": ad_id,
                                                   "Gamead-Record-Revision": "12"})
    assert id_lines("01jd\r\nNats-Expected-Last-Subject-Sequence: 9", 12) is None
    assert id_lines("01jd é", 12) is None and id_lines(ad_id, None) is None
