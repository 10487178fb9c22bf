"""Count every NATS message of a running stack by what it is (issue 14: messages per ad, accounted).

A plain core-NATS subscriber on ``>`` sees each message routed by the server once: what clients publish
(work publishes, KV writes, pull requests, acks, JetStream API calls, replies) and what the server itself
sends (deliveries, pull status answers 404/408/409, publish acks, API replies, advisories). It is run in its
own process by ``bench_idle.py --breakdown`` (so its Python cost lands on no role)::

    .venv/bin/python benchmarks/msg_tap.py nats://127.0.0.1:4222 /tmp/counts.json

It prints ``ready`` once subscribed, counts until SIGTERM or SIGINT, then writes ``{class: count}`` as JSON
to the path given. :func:`classify` is the pure part (tested in ``tests/unit/test_msg_tap.py``).
"""

from __future__ import annotations

import asyncio
import json
import signal
from collections import Counter
from collections.abc import Mapping


def _stream_of_ack(reply: str) -> str:
    # $JS.ACK.<stream>.<consumer>.… (v1) or $JS.ACK.<domain>.<hash>.<stream>.… (v2): the stream is the token
    # after ACK in v1; v2 has >= 12 tokens
    tokens = reply.split(".")
    if len(tokens) >= 12:
        return tokens[4]
    return tokens[2] if len(tokens) > 2 else "?"


def classify(subject: str, reply: str, headers: Mapping[str, str] | None, data: bytes) -> str:
    """The class of one message seen on ``>``: e.g. ``"pull request no_wait"``, ``"delivery GAMEAD_ADS"``,
    ``"status 408"``, ``"ack +ACK"``, ``"KV write gamead_ads"``, ``"work publish"``, ``"pub ack KV_gamead_ads"``.
    Pure: a subject, the reply subject ('' if none), the headers (or None) and the payload."""
    if subject.startswith("$JS.API.CONSUMER.MSG.NEXT."):
        try:
            req = json.loads(data or b"{}")
        except ValueError:
            req = {}
        return "pull request no_wait" if req.get("no_wait") else "pull request long-poll"
    if subject.startswith("$JS.API.CONSUMER.INFO."):
        return "API consumer info"
    if subject.startswith("$JS.API.DIRECT.GET."):
        return "API direct get"
    if subject.startswith("$JS.API."):
        return "API " + ".".join(subject.split(".")[2:4]).lower()
    if subject.startswith("$JS.ACK."):
        kind = bytes(data[:4]).decode("ascii", "replace") if data else "+ACK"
        return f"ack {kind}" + (" (with reply)" if reply else "") + f" {_stream_of_ack(subject)}"
    if subject.startswith("$JS.EVENT."):
        return "JetStream advisory " + ".".join(subject.split(".")[3:5]).lower()
    if reply.startswith("$JS.ACK."):  # the server delivering a stream's message (its original subject)
        return f"delivery {_stream_of_ack(reply)}"
    if subject.startswith("$KV."):
        return "KV write " + subject.split(".")[1]
    if subject.startswith("gamead.ads."):
        return "work publish"
    status = headers.get("Status") if headers else None
    if status:
        return f"status {status}"
    if subject.startswith("_INBOX.") or "INBOX" in subject.split(".")[0]:
        if data.startswith(b'{"stream":'):
            try:
                return f"pub ack {json.loads(data)['stream']}"
            except (ValueError, KeyError):
                return "pub ack"
        if headers and headers.get("Nats-Stream"):
            return f"direct get answer {headers['Nats-Stream']}"
        if data.startswith(b'{"type":"io.nats.jetstream.api.v1.consumer_info'):
            return "API reply consumer info"
        if data.startswith(b'{"type":'):
            return "API reply"
        return "reply (other)"
    return ".".join(subject.split(".")[:2])


async def tap(url: str, out: str) -> None:
    import nats  # the benchmark venv has it; kept local so classify() imports nothing

    counts: Counter[str] = Counter()

    async def on_msg(msg: object) -> None:
        counts[classify(msg.subject, msg.reply or "", msg.headers, msg.data)] += 1  # type: ignore[attr-defined]

    nc = await nats.connect(url, pending_size=512 * 1024 * 1024)
    await nc.subscribe(">", cb=on_msg, pending_msgs_limit=10_000_000, pending_bytes_limit=1024 * 1024 * 1024)
    await nc.flush()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print("ready", flush=True)
    await stop.wait()
    await nc.flush()
    await nc.close()
    with open(out, "w") as fh:
        json.dump(dict(counts), fh)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url", help="the NATS server to tap, e.g. nats://127.0.0.1:4222")
    parser.add_argument("out", help="where to write the counts (JSON) at SIGTERM/SIGINT")
    args = parser.parse_args()
    asyncio.run(tap(args.url, args.out))
