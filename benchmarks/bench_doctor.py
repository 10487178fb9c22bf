"""How `gamead doctor` scales: one run over a large store, measured (benchmark, never a test).

An embedded nats-server is filled with R ad records, as a long-running service has them: mostly completed
(with their analysis, ~2.8 KB each, written with the completed-record TTL), B queued with their message in
the work stream, D dead with their DLQ entry. Then one doctor run, in this process, over its own connection,
exactly as `GET /v1/doctor` runs it on an API node. Reported: wall time, bytes received on the wire,
JetStream API calls, whole records read, this process's CPU, nats-server's CPU; per record. For scale, the
same store read the naive way (every record whole, one ordered consumer). Then `--broken` ads are broken
(their work message deleted) and the run repeated: findings cost a second look.

    .venv/bin/python benchmarks/bench_doctor.py                       # R = 100,000, B = 2,000, D = 1,000
    .venv/bin/python benchmarks/bench_doctor.py --records 20000 --broken 100
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import nats

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gamead_core import names  # noqa: E402
from gamead_core.ad_ids import new_ad_id  # noqa: E402
from gamead_core.config import GameadSettings  # noqa: E402
from gamead_core.doctor import diagnose, summary  # noqa: E402
from gamead_core.doctor.repair import entry_from_record  # noqa: E402
from gamead_core.embedded import EmbeddedNats  # noqa: E402
from gamead_core.models import AdRecord, AdStatus, AdSubmission, utcnow  # noqa: E402
from gamead_core.queue.scan import read_stream  # noqa: E402
from gamead_core.queue.topology import ensure_topology  # noqa: E402
from gamead_core.store.ads import AdStore, encode  # noqa: E402
from gamead_core.worker.analyzer import analyze  # noqa: E402

AD = AdSubmission(title="Dragon Kingdom: Rise to Power",
                  description="Build your kingdom, train your dragons, and conquer new territories!",
                  genre="Strategy", target_audience=["18-34", "Strategy Gamers"],
                  visual_elements=["Dragons", "Castle", "Battle Scenes"],
                  call_to_action="Download Now & Claim 1000 Free Gems!", duration=30, priority=2)
BATCH = 2000


class WireCount:
    """Counts every byte a nats-py client reads from its socket (its transport's ``read``): the wire cost,
    headers and protocol lines included, which nats-py's own ``in_bytes`` (bodies only) leaves out."""

    def __init__(self, nc: nats.aio.client.Client) -> None:
        self.total = 0
        transport = nc._transport  # the benchmark's own connection: instrumented, not changed
        original = transport.read

        async def read(size: int) -> bytes:
            data = await original(size)
            self.total += len(data)
            return data

        transport.read = read


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100


async def fill(js: nats.js.JetStreamContext, store: AdStore, records: int, queued: int, dead: int) -> None:
    """R records: ``queued`` queued with a work message, ``dead`` dead with a DLQ entry, the rest completed."""
    now = utcnow()
    analysis = analyze(AD)
    pending = 0
    for i in range(records):
        ad_id = new_ad_id()
        base = AdRecord(id=ad_id, status=AdStatus.QUEUED, priority=1 + i % 5, submitted_at=now, ad=AD)
        if i < queued:
            await js.publish_async(names.level_subject(base.priority), encode(base),
                                   headers={names.HDR_MSG_ID: ad_id, names.HDR_AD_ID: ad_id})
            await js.publish_async(f"$KV.{names.ADS_BUCKET}.{ad_id}", encode(base))
        elif i < queued + dead:
            record = base.model_copy(update={"status": AdStatus.DEAD, "attempts": 5, "completed_at": now})
            await js.publish_async(names.dlq_subject(ad_id), entry_from_record(record).model_dump_json(
                exclude_none=True, exclude={"seq"}).encode(), headers={names.HDR_AD_ID: ad_id})
            await js.publish_async(f"$KV.{names.ADS_BUCKET}.{ad_id}", encode(record))
        else:
            record = base.model_copy(update={"status": AdStatus.COMPLETED, "attempts": 1, "started_at": now,
                                             "completed_at": now, "analysis": analysis, "worker_id": "w1"})
            await js.publish_async(f"$KV.{names.ADS_BUCKET}.{ad_id}", encode(record), msg_ttl=store.final_ttl)
        pending += 1
        if pending >= BATCH:
            await js.publish_async_completed()
            pending = 0
    await js.publish_async_completed()


async def naive_read(url: str) -> tuple[float, int, int]:
    """Every record read whole (an ordered consumer over the bucket): seconds, bytes received, records."""
    nc = await nats.connect(url)
    try:
        wire = WireCount(nc)
        started, n = time.monotonic(), 0
        async for _ in read_stream(nc.jetstream(), names.ADS_BUCKET_STREAM, f"$KV.{names.ADS_BUCKET}.>"):
            n += 1
        return time.monotonic() - started, wire.total, n
    finally:
        await nc.close()


async def one_run(url: str, settings: GameadSettings, server_pid: int) -> dict[str, float]:
    nc = await nats.connect(url)
    try:
        counter = WireCount(nc)
        cpu, server_cpu, started = time.process_time(), cpu_seconds(server_pid), time.monotonic()
        found = await diagnose(nc, nc.jetstream(timeout=10), settings)
        wall = time.monotonic() - started
        wire = counter.total
        report = found.report
        read = report.read
        return {"wall": wall, "cpu": time.process_time() - cpu, "server_cpu": cpu_seconds(server_pid) - server_cpu,
                "bytes": wire, "payload": read.payload_bytes, "calls": read.api_calls, "reads": read.record_reads,
                "records": read.records, "work": read.work_messages, "dlq": read.dlq_entries,
                "summary": summary(report), "ok": report.ok,  # type: ignore[dict-item]
                "partial": "; ".join(report.partial)}  # type: ignore[dict-item]
    finally:
        await nc.close()


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedNats(Path(tmp) / "nats").start()
        try:
            settings = GameadSettings(doctor={"settle": args.settle})
            nc = await nats.connect(server.url)
            js = nc.jetstream(timeout=30)
            await ensure_topology(js, settings)
            store = await AdStore.open(nc, js)
            t = time.monotonic()
            await fill(js, store, args.records, args.queued, args.dead)
            print(f"filled {args.records:,} records ({args.queued:,} queued, {args.dead:,} dead) in "
                  f"{time.monotonic() - t:.1f} s", file=sys.stderr)
            assert server.proc is not None
            clean = await one_run(server.url, settings, server.proc.pid)
            naive_wall, naive_bytes, naive_n = await naive_read(server.url)
            broken = None
            if args.broken:
                seqs = []
                seq = 0
                while len(seqs) < args.broken:
                    raw = await js.get_msg(names.ADS_STREAM, seq=seq + 1, subject=names.ADS_SUBJECT_WILDCARD,
                                           next=True)
                    seq = raw.seq
                    seqs.append(seq)
                for s in seqs:
                    await js.delete_msg(names.ADS_STREAM, s)
                broken = await one_run(server.url, settings, server.proc.pid)
            await nc.close()
        finally:
            server.stop()
    r = args.records
    print(f"\n`gamead doctor` over {r:,} records ({args.queued:,} waiting, {args.dead:,} dead), one run, "
          f"settle {args.settle:g} s\n")
    print("| figure | clean store | per record |")
    print("| --- | --- | --- |")
    rows = [("wall time", f"{clean['wall']:.2f} s", f"{clean['wall'] / r * 1e6:.0f} µs"),
            ("bytes received (on the wire)", f"{clean['bytes'] / 1e6:.1f} MB", f"{clean['bytes'] / r:.0f} B"),
            ("of which message bodies", f"{clean['payload'] / 1e6:.1f} MB", f"{clean['payload'] / r:.0f} B"),
            ("JetStream API calls (listings, counts, topology)", f"{clean['calls']:,}", ""),
            ("whole records read (direct gets)", f"{clean['reads']:,}", f"{clean['reads'] / r:.3f}"),
            ("doctor process CPU", f"{clean['cpu']:.2f} s", f"{clean['cpu'] / r * 1e6:.0f} µs"),
            ("nats-server CPU", f"{clean['server_cpu']:.2f} s", f"{clean['server_cpu'] / r * 1e6:.0f} µs"),
            ("listed: records / work messages / DLQ entries",
             f"{clean['records']:,} / {clean['work']:,} / {clean['dlq']:,}", ""),
            ("verdict", str(clean["summary"]), ""),
            ("naive read of every record whole: time", f"{naive_wall:.2f} s", f"{naive_wall / r * 1e6:.0f} µs"),
            ("naive read: bytes received (on the wire)", f"{naive_bytes / 1e6:.1f} MB ({naive_n:,} records)",
             f"{naive_bytes / r:.0f} B")]
    for name, value, per in rows:
        print(f"| {name} | {value} | {per} |")
    if broken is not None:
        print(f"\nwith {args.broken} ads broken (work message deleted): {broken['wall']:.2f} s wall "
              f"(settle {args.settle:g} s included), {broken['calls']:,} API calls, {broken['reads']:,} record "
              f"reads, {broken['bytes'] / 1e6:.1f} MB; {broken['summary']}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--queued", type=int, default=2_000)
    parser.add_argument("--dead", type=int, default=1_000)
    parser.add_argument("--broken", type=int, default=100)
    parser.add_argument("--settle", type=float, default=1.5)
    asyncio.run(main(parser.parse_args()))
