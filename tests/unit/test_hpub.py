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
