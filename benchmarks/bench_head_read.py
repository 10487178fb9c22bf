"""Bytes and client CPU of one queue-head read (issue 14.2 "head ages without bodies").

Run from the repository root::

    .venv/bin/python benchmarks/bench_head_read.py            # 2,000 reads of each kind

A fresh ``nats-server`` with gamead's topology, one real ad published to priority 3 (the README's sample ad,
as ``POST /ads`` publishes it: encoded record, ``Nats-Msg-Id`` and ``Gamead-Ad-Id`` headers). Then the head of
the level is read ``--reads`` times each way:

* ``STREAM.MSG.GET`` (``js.get_msg(next=True)``): what ``queue/depth.py`` did before: a JSON reply holding the
  base64 of the headers and of the body, decoded by nats-py;
* direct get (:func:`gamead_core.queue.depth.peek_next`): the stored message itself, headers as NATS headers
  (``Nats-Time-Stamp`` among them), the body carried raw and never parsed.

Printed: the reply's bytes (payload + headers as sent, ``NATS/1.0`` line included) and the client CPU per read
(µs, ``time.process_time``). nats-server 2.15.1 offers no get without the body (see ``peek_next``'s doc).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests.support: the README's sample ad

import nats  # noqa: E402

from gamead_core import names  # noqa: E402
from gamead_core.config import GameadSettings  # noqa: E402
from gamead_core.embedded import EmbeddedNats  # noqa: E402
from gamead_core.models import AdRecord, AdStatus, AdSubmission, utcnow  # noqa: E402
from gamead_core.queue.depth import peek_next  # noqa: E402
from gamead_core.queue.topology import ensure_topology  # noqa: E402
from gamead_core.store.ads import encode  # noqa: E402
from benchmarks.needs_test_install import require  # noqa: E402

require(__file__)

from tests.support import SAMPLE_AD  # noqa: E402


def _wire_bytes(msg: nats.aio.msg.Msg) -> int:
    headers = msg.headers or {}
    head = len("NATS/1.0\r\n\r\n") + sum(len(str(k)) + len(str(v)) + 4 for k, v in headers.items()) if headers else 0
    return len(msg.data or b"") + head


async def run(url: str, reads: int) -> None:
    nc = await nats.connect(url)
    js = nc.jetstream()
    await ensure_topology(js, GameadSettings())
    ad = AdSubmission.model_validate({**SAMPLE_AD, "priority": 3})
    record = AdRecord(id="01jx0000000000000000000000", status=AdStatus.QUEUED, priority=3, submitted_at=utcnow(), ad=ad)
    payload = encode(record)
    await js.publish(names.level_subject(3), payload,
                     headers={names.HDR_MSG_ID: record.id, names.HDR_AD_ID: record.id})
    print(f"one ad at priority 3: body {len(payload)} B")

    sizes: dict[str, int] = {}

    async def tap(kind: str, subject: str, body: bytes) -> None:
        reply = await nc.request(subject, body, timeout=2)
        sizes[kind] = _wire_bytes(reply)

    req = f'{{"seq":1,"next_by_subj":"{names.level_subject(3)}"}}'.encode()
    await tap("STREAM.MSG.GET (before)", f"$JS.API.STREAM.MSG.GET.{names.ADS_STREAM}", req)
    await tap("direct get (now)", f"$JS.API.DIRECT.GET.{names.ADS_STREAM}", req)

    async def old() -> None:
        head = await js.get_msg(names.ADS_STREAM, seq=1, subject=names.level_subject(3), next=True)
        assert head.time is not None

    async def new() -> None:
        head = await peek_next(js, names.ADS_STREAM, names.level_subject(3), 0)
        assert head is not None and head.time is not None

    for kind, read in (("STREAM.MSG.GET (before)", old), ("direct get (now)", new)):
        for _ in range(50):  # warm-up
            await read()
        cpu = time.process_time()
        for _ in range(reads):
            await read()
        per = (time.process_time() - cpu) / reads * 1e6
        print(f"{kind:24} reply {sizes[kind]:5d} B   client CPU {per:6.1f} µs per head read")
    await nc.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reads", type=int, default=2000, help="head reads of each kind")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedNats(Path(tmp) / "nats").start()
        try:
            asyncio.run(run(server.url, args.reads))
        finally:
            server.stop()


if __name__ == "__main__":
    main()
