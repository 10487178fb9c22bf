"""nats-server's memory per ad record: the RSS of an embedded nats-server as gamead's record bucket fills.

Run from the repository root::

    .venv/bin/python benchmarks/bench_record_memory.py                       # 400,000 records, a few minutes
    .venv/bin/python benchmarks/bench_record_memory.py --records 1500000     # a full 4 GiB bucket
    .venv/bin/python benchmarks/bench_record_memory.py --output json > mem.json   # progress goes to stderr

What runs: an embedded ``nats-server`` as ``gamead up`` starts it (:class:`gamead_core.embedded.EmbeddedNats`,
its own scratch directory, a loopback port: ``BENCH_PORTS=LOW-HIGH`` keeps it to a range), and gamead's whole
JetStream topology made by gamead's own code (:func:`gamead_core.queue.topology.ensure_topology` with the
settings a node reads: defaults, ``GAMEAD_*`` variables), so the ad-record bucket has its real limits: history 1,
``records.max_bytes``, ``records.max_age``, the per-key TTL of completed records, ``discard: old``.

The records: completed records as a worker writes them. 1,000 ads from ``gamead_cli.generate`` are analysed by
the worker's analyser (:func:`gamead_core.worker.analyzer.analyze`) and their completed records encoded by the
worker's own path (:func:`gamead_core.worker.completed_json.completed_bytes`); each record written is one of them
under a fresh ad id (:func:`gamead_core.ad_ids.new_ad_id`, the id replaced in the record's bytes too). They are
written through :meth:`gamead_core.store.ads.AdStore.create_many` (create-only puts carrying the bucket's
completed-record TTL header, ``--batch`` of them pipelined before the acks are awaited): one write per record,
so the bucket holds no deleted revisions; a live stack writes each record three times (queued, processing,
completed) and has its work streams, DLQ and audit besides: this is the bucket's share alone.

Samples: nats-server's VmRSS (``/proc/PID/status``) at its start, with the topology made (the base: every
stream and bucket empty) and every ``--every`` records, then after ``--settle`` seconds with no writes (the last
of one sample a second), then after a restart (SIGTERM, the same store, the same port): once the bucket answers
with every record again, and ``--settle`` seconds later. MiB per 1,000 records is (RSS − the base) / records held
(the bucket's messages: past ``records.max_bytes`` it drops its oldest) × 1,000. Every process is started in a
process group of its own and stopped by PID; the scratch directory (~4 GB for 1.5 M records) is removed at exit
unless ``GAMEAD_BENCH_KEEP=1``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from bench_common import print_result, rss_mb  # noqa: E402
from bench_pipeline import free_port, log, scratch_dir  # noqa: E402

MIB = 2**20
#: distinct ads analysed for the record templates (each written under many ids)
TEMPLATES = 1000


def rss_mib(pid: int) -> float:
    """VmRSS of process ``pid`` in MiB; RuntimeError if it is gone."""
    mb = rss_mb(pid)
    if mb is None:
        raise RuntimeError(f"nats-server (pid {pid}) is gone")
    return mb * 1e6 / MIB


def templates(n: int) -> list[tuple[Any, bytes, bytes, bytes]]:
    """``n`` completed records as a worker writes them: ``(record, its bytes, the bytes of its queued and of its
    processing record)``, from ``generate_ads`` analysed by the worker's analyser and encoded by its completion
    path (the others by :func:`gamead_core.store.ads.encode`)."""
    from datetime import datetime, timedelta, timezone  # noqa: PLC0415

    from gamead_cli.generate import generate_ads  # noqa: PLC0415
    from gamead_core.ad_ids import new_ad_id  # noqa: PLC0415
    from gamead_core.models import AdRecord, AdStatus, AdSubmission  # noqa: PLC0415
    from gamead_core.store.ads import encode  # noqa: PLC0415
    from gamead_core.worker.analyzer import analyze  # noqa: PLC0415
    from gamead_core.worker.completed_json import completed_bytes, completed_record  # noqa: PLC0415

    out = []
    now = datetime.now(timezone.utc)
    for k, body in enumerate(generate_ads(n, seed=43)):
        ad = AdSubmission.model_validate(body)
        started = AdRecord(id=new_ad_id(), status=AdStatus.PROCESSING, priority=ad.priority,
                           submitted_at=now - timedelta(milliseconds=40), ad=ad,
                           started_at=now - timedelta(milliseconds=30), attempts=1, worker_id="local-1",
                           delivery=f"{k + 1}.1")
        analysis = analyze(ad)
        queued = AdRecord(id=started.id, status=AdStatus.QUEUED, priority=ad.priority,
                          submitted_at=started.submitted_at, ad=ad)
        out.append((completed_record(started, now, analysis), completed_bytes(started, now, analysis),
                    encode(queued), encode(started)))
    return out


async def _bucket_count(js: Any) -> int:
    from gamead_core import names  # noqa: PLC0415

    return int((await js.stream_info(names.ADS_BUCKET_STREAM)).state.messages)


async def fill(url: str, pid: int, a: argparse.Namespace, samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Make gamead's topology on the server at ``url`` and write ``a.records`` completed records, sampling the RSS
    of ``pid`` into ``samples`` every ``a.every`` records. Returns the bucket's state and the records' sizes."""
    import nats  # noqa: PLC0415

    from gamead_core import names  # noqa: PLC0415
    from gamead_core.ad_ids import new_ad_id  # noqa: PLC0415
    from gamead_core.config import GameadSettings  # noqa: PLC0415
    from gamead_core.queue.topology import ensure_topology  # noqa: PLC0415
    from gamead_core.store.ads import AdStore  # noqa: PLC0415

    settings = GameadSettings()
    pool = templates(TEMPLATES)
    sizes = [len(t[1]) for t in pool]
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        await ensure_topology(js, settings)
        store = await AdStore.open(nc, js)
        log(f"topology made; record bucket max_bytes {settings.records.max_bytes:,}, completed-record TTL "
            f"{store.final_ttl}; records {min(sizes):,}-{max(sizes):,} B (mean {sum(sizes) / len(sizes):,.0f})")
        samples.append({"phase": "topology made", "records": 0, "rss_mib": rss_mib(pid)})
        written, failed, next_sample, started = 0, 0, a.every, time.monotonic()
        while written < a.records:
            n = min(a.batch, a.records - written, next_sample - written)
            batch = [(pool[(written + k) % len(pool)], new_ad_id()) for k in range(n)]
            failed += await (write_lifecycle if a.lifecycle else write_completed)(store, batch)
            written += n
            if written == next_sample or written == a.records:
                next_sample = min(next_sample + a.every, a.records)
                rate = written / max(1e-9, time.monotonic() - started)
                samples.append({"phase": "fill", "written": written, "records": await _bucket_count(js),
                                "rss_mib": rss_mib(pid)})
                log(f"{written:,} records written ({rate:,.0f}/s, {failed} failed), {samples[-1]['records']:,} held: "
                    f"nats-server {samples[-1]['rss_mib']:,.1f} MiB")
        info = await js.stream_info(names.ADS_BUCKET_STREAM)
        return {"written": written, "failed": failed, "seconds": time.monotonic() - started,
                "bucket_messages": int(info.state.messages), "bucket_bytes": int(info.state.bytes),
                "record_bytes_mean": sum(sizes) / len(sizes), "record_bytes_min": min(sizes),
                "record_bytes_max": max(sizes), "bucket_max_bytes": settings.records.max_bytes}
    finally:
        await nc.close()


def _with_id(payload: bytes, old: str, new: str) -> bytes:
    return payload.replace(old.encode(), new.encode(), 1)


async def write_completed(store: Any, batch: list[tuple[tuple[Any, bytes, bytes, bytes], str]]) -> int:
    """Create each completed record of ``batch`` (``(template, new id)``) under its id, pipelined, with the
    completed-record TTL; returns how many writes failed."""
    records = [t[0].model_copy(update={"id": ad_id}) for t, ad_id in batch]
    payloads = [_with_id(t[1], t[0].id, ad_id) for t, ad_id in batch]
    return sum(1 for x in await store.create_many(records, payloads) if not isinstance(x, int))


async def write_lifecycle(store: Any, batch: list[tuple[tuple[Any, bytes, bytes, bytes], str]]) -> int:
    """Write each record of ``batch`` as a live ad's is written: created ``queued`` (the batch submit's
    create-only put), then ``processing`` and ``completed`` (the worker's compare-and-set updates, the last with
    the completed-record TTL), each step pipelined over the batch; returns how many records failed."""
    ids = [ad_id for _, ad_id in batch]
    revs = await store.create_queued_many(ids, [_with_id(t[2], t[0].id, ad_id) for t, ad_id in batch])
    for step, final in ((3, False), (1, True)):
        live = [k for k, r in enumerate(revs) if isinstance(r, int)]
        writes = [(ids[k], _with_id(batch[k][0][step], batch[k][0][0].id, ids[k]), revs[k]) for k in live]
        for k, r in zip(live, await store.update_many(writes, final=final), strict=True):
            revs[k] = r
    return sum(1 for r in revs if not isinstance(r, int))


async def recovered(url: str, want: int, timeout: float) -> int:
    """Wait until the record bucket on ``url`` answers with ``want`` records (the restarted server has read its
    store); the count it last answered. RuntimeError after ``timeout`` seconds."""
    import nats  # noqa: PLC0415

    deadline = time.monotonic() + timeout
    nc = await nats.connect(url, max_reconnect_attempts=-1)
    try:
        js = nc.jetstream()
        seen = -1
        while time.monotonic() < deadline:
            try:
                seen = await _bucket_count(js)
            except Exception:  # noqa: BLE001 - JetStream still recovering: ask again
                seen = -1
            if seen >= want:
                return seen
            await asyncio.sleep(0.2)
        raise RuntimeError(f"the restarted nats-server answered {seen} of {want} records after {timeout:g} s")
    finally:
        await nc.close()


def settle(pid: int, seconds: float, phase: str, records: int, samples: list[dict[str, Any]]) -> None:
    """Sample ``pid``'s RSS once a second for ``seconds`` (a measurement window, nothing waited on); the last
    sample is the phase's figure."""
    end = time.monotonic() + seconds
    while True:
        mib = rss_mib(pid)
        if time.monotonic() >= end:
            samples.append({"phase": phase, "records": records, "rss_mib": mib})
            log(f"{phase}: nats-server {mib:,.1f} MiB")
            return
        time.sleep(1.0)


def run(a: argparse.Namespace) -> dict[str, Any]:
    from gamead_core.config import GameadSettings  # noqa: PLC0415
    from gamead_core.embedded import EmbeddedNats  # noqa: PLC0415

    root = scratch_dir("gamead-bench-recmem-")
    embedded = GameadSettings().embedded
    server = EmbeddedNats(root / "nats", pick_port=free_port, sync_always=embedded.sync_always,
                          gomaxprocs=embedded.gomaxprocs)
    samples: list[dict[str, Any]] = []
    try:
        server.start()
        assert server.proc is not None
        log(f"nats-server pid {server.proc.pid} on {server.url}, store {root / 'nats'}")
        samples.append({"phase": "empty", "records": 0, "rss_mib": rss_mib(server.proc.pid)})
        bucket = asyncio.run(fill(server.url, server.proc.pid, a, samples))
        held = bucket["bucket_messages"]
        settle(server.proc.pid, a.settle, "settled", held, samples)
        server.stop()
        t0 = time.monotonic()
        server.start(timeout=a.recovery_timeout)
        assert server.proc is not None
        asyncio.run(recovered(server.url, held, a.recovery_timeout))
        recovery = time.monotonic() - t0
        samples.append({"phase": "restarted", "records": held, "rss_mib": rss_mib(server.proc.pid)})
        log(f"restarted in {recovery:.1f} s: nats-server {samples[-1]['rss_mib']:,.1f} MiB")
        settle(server.proc.pid, a.settle, "restarted+settled", held, samples)
    finally:
        server.stop()
    base = samples[1]["rss_mib"]  # the topology made, the bucket empty
    for s in samples:
        s["mib_per_1000"] = (s["rss_mib"] - base) / s["records"] * 1000 if s["records"] else None
    return {"records": a.records, "lifecycle": a.lifecycle, "every": a.every, "settle_seconds": a.settle,
            "recovery_seconds": recovery,
            "bucket": bucket, "samples": samples}


def print_table(r: dict[str, Any]) -> None:
    from rich.console import Console  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415

    b = r["bucket"]
    how = "each written queued, processing, completed" if r["lifecycle"] else "written once each"
    t = Table(title=f"nats-server RSS, gamead record bucket: {b['written']:,} completed records ({how}, "
                    f"{b['record_bytes_mean']:,.0f} B mean) in {b['seconds']:,.0f} s; bucket holds "
                    f"{b['bucket_messages']:,} ({b['bucket_bytes'] / MIB:,.0f} MiB of "
                    f"{b['bucket_max_bytes'] / MIB:,.0f})")
    for col in ("phase", "records", "RSS MiB", "MiB per 1,000 records"):
        t.add_column(col, justify="left" if col == "phase" else "right")
    for s in r["samples"]:
        per = s["mib_per_1000"]
        t.add_row(s["phase"], f"{s['records']:,}", f"{s['rss_mib']:,.1f}", "–" if per is None else f"{per:.3f}")
    Console().print(t)
    print(f"restart to every record answering: {r['recovery_seconds']:.1f} s")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--records", type=int, default=400_000, help="completed records to write (400,000)")
    p.add_argument("--every", type=int, default=50_000, help="records between RSS samples (50,000)")
    p.add_argument("--batch", type=int, default=2_000, help="writes pipelined before their acks are awaited")
    p.add_argument("--lifecycle", action="store_true",
                   help="write each record three times as a live ad's is (queued, processing, completed)")
    p.add_argument("--settle", type=float, default=10.0, help="seconds without writes before the settled figures")
    p.add_argument("--recovery-timeout", type=float, default=600.0, help="seconds the restart may take")
    p.add_argument("--output", choices=["table", "json"], default="table")
    a = p.parse_args(argv)
    if a.records < 1 or a.every < 1 or a.batch < 1 or a.settle < 0:
        p.error("--records, --every and --batch must be at least 1, --settle at least 0")
    print_result(run(a), a.output, print_table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
