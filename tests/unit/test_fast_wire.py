"""What a worker's connection receives and acknowledges goes through cheaper paths with nats-py's own results
(issue 14.2, session 34): the header block of every received message parsed as nats-py parses it
(gamead_core.queue.headers), and a settle round's acks put in the buffer as the very bytes ``msg.ack()`` writes
(gamead_core.queue.hpub.ack_all), each acknowledged at the server; real nats-server."""

from __future__ import annotations

import asyncio
import random

import nats
import pytest
from nats.aio.client import Client as NATS
from nats.errors import MsgAlreadyAckdError

from gamead_core.config import NatsSettings
from gamead_core.embedded import EmbeddedNats
from gamead_core.queue.connection import connect
from gamead_core.queue.headers import parse_header_lines
from gamead_core.queue.hpub import ack_all
from gamead_core.queue.liveness import PublishRefused, guard_writes

#: a work delivery's header block (the figure: ~60 generator steps per delivery in nats-py's parse), and oddities
BLOCKS = [
    b"Nats-Msg-Id: 01jdsample0000000000000000\r\nGamead-Ad-Id: 01jdsample0000000000000000\r\n"
    b"Gamead-Record-Revision: 123456\r\n\r\n",
    b"Name:Value\r\nTabbed:\tv \r\n  Padded  : x\r\nIn side: x\r\n\x1cSep: y\r\nEnd\x1f: z\r\nV: \x1cw\x1f\r\n",
    b"No colon\r\n\r\n:empty name\r\nDup: 1\r\nDup: 2\r\nUtf: \xc3\xa9\r\nBad: \xff\r\n\xc3\xa9: name\r\n",
    b"", b"\r\n", b"A: b",
]


def test_header_blocks_parse_as_nats_py_parses_them() -> None:
    ours = NATS._parse_header_lines
    for block in BLOCKS:
        assert parse_header_lines(block) == ours(block), block
    rnd = random.Random(34)  # fixed: the same 20,000 blocks every run, of the bytes the rules turn on
    alphabet = [b"a", b"Z", b":", b" ", b"\t", b"\r", b"\n", b"\r\n", b"\x0b", b"\x0c", b"\x1c", b"\x1f", b"\x85",
                b"\xc3\xa9", b"\xff", b"-", b"\x00"]
    for _ in range(20_000):
        block = b"".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 16)))
        assert parse_header_lines(block) == ours(block), block


def test_a_gamead_connection_receives_the_headers_nats_py_does(nats_server: EmbeddedNats) -> None:
    async def run() -> None:
        ours = await connect(NatsSettings(), nats_server.url, name="fast-headers")
        plain = await nats.connect(nats_server.url)
        try:
            assert ours._parse_header_lines is parse_header_lines  # installed on gamead's connections
            subs = [await nc.subscribe("fast.headers") for nc in (ours, plain)]
            await ours.flush()
            await plain.flush()
            sent = {"Nats-Msg-Id": "01jd", "Gamead-Ad-Id": "01jd", "Gamead-Record-Revision": "12", "Accent": "é"}
            await plain.publish("fast.headers", b"x", headers=sent)
            got = [(await sub.next_msg(timeout=5)).headers for sub in subs]
            assert got[0] == got[1] == sent
        finally:
            await ours.close()
            await plain.close()

    asyncio.run(run())


def test_a_rounds_acks_are_msg_acks_bytes_and_acknowledged(nats_server: EmbeddedNats) -> None:
    async def run() -> None:
        nc = await connect(NatsSettings(), nats_server.url, name="fast-acks")
        try:
            guard_writes(nc, 1 << 20)
            js = nc.jetstream()
            await js.add_stream(name="FASTACKS", subjects=["fast.acks"])
            for i in range(6):
                await js.publish("fast.acks", b"%d" % i)
            sub = await js.pull_subscribe("fast.acks", durable="fast-acks")
            msgs = await sub.fetch(6, timeout=5)
            before = len(nc._pending)
            await msgs[0].ack()  # nats-py's own: no await before it is in the buffer
            theirs = b"".join(nc._pending[before:])
            before = len(nc._pending)
            assert ack_all(nc, msgs[1:4]) == []
            assert b"".join(nc._pending[before:]) == b"".join(
                theirs.replace(msgs[0].reply.encode(), m.reply.encode()) for m in msgs[1:4])
            assert all(m._ackd for m in msgs[1:4])
            assert ack_all(nc, [msgs[1], msgs[4]]) == [msgs[1]]  # acknowledged already: left to msg.ack()
            with pytest.raises(MsgAlreadyAckdError):
                await msgs[1].ack()
            await nc.flush()
            guard_writes(nc, 1)  # over the write guard's bound: left to msg.ack(), which refuses it
            assert ack_all(nc, [msgs[5]]) == [msgs[5]] and not msgs[5]._ackd
            with pytest.raises(PublishRefused):
                await msgs[5].ack()
            look = await nats.connect(nats_server.url)  # (ours refuses every request now)
            try:
                info = look.jetstream().consumer_info
                for _ in range(50):  # the server counts each ack sent: only the refused one is left pending
                    if (await info("FASTACKS", "fast-acks")).num_ack_pending == 1:
                        break
                    await asyncio.sleep(0.1)
                assert (await info("FASTACKS", "fast-acks")).num_ack_pending == 1
            finally:
                await look.close()
        finally:
            await nc.close()

    asyncio.run(run())
