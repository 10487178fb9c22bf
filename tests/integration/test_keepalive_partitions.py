"""The ack-wait keep-alive tells JetStream "in progress" for every held delivery, by (stream, sequence): with
``queue.partitions`` > 1 two held deliveries can share a stream sequence (one per partition), and one of them
ending must not stop the other's keep-alive (it did: timers were keyed by the sequence alone)."""

from __future__ import annotations

import asyncio

import nats
from nats.aio.msg import Msg

from gamead_core.embedded import EmbeddedNats
from gamead_core.worker.hooks import Delivery
from gamead_core.worker.keepalive import AckWaitKeepAlive


def _delivery(nc: nats.NATS, stream: str, seq: int) -> Delivery:
    reply = f"$JS.ACK.{stream}.gamead-p1.1.{seq}.{seq}.1700000000000000000.0"  # JetStream's ack subject
    return Delivery(Msg(_client=nc, subject="gamead.ads.p1", reply=reply), seq, f"{seq}.1", f"ad{seq}")


def test_one_partitions_delivery_ending_keeps_the_others_in_progress(nats_server: EmbeddedNats) -> None:
    async def main() -> list[str]:
        nc = await nats.connect(nats_server.url)
        acks: list[str] = []

        async def on_ack(msg: Msg) -> None:
            if msg.data == b"+WPI":
                acks.append(msg.subject.split(".")[2])  # the stream of the in-progress ack

        await nc.subscribe("$JS.ACK.>", cb=on_ack)
        keep = AckWaitKeepAlive(ack_wait=0.9)  # an in-progress ack every 0.5 s
        first, second = _delivery(nc, "GAMEAD_ADS", 7), _delivery(nc, "GAMEAD_ADS_1", 7)
        await keep.before_delivery(first)
        await keep.before_delivery(second)
        await keep.after_delivery(first)  # partition 0's ad is settled; partition 1's still runs
        deadline = asyncio.get_running_loop().time() + 20
        while acks.count("GAMEAD_ADS_1") < 2 and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        await keep.after_delivery(second)
        await nc.drain()
        return acks

    acks = asyncio.run(main())
    assert acks.count("GAMEAD_ADS_1") >= 2 and "GAMEAD_ADS" not in acks
