"""How much memory `GET /v1/doctor` takes on an API node (a measurement, never a test; attack31b F9).

An embedded nats-server is filled with ``--dead`` records of ``dead`` ads at the field limits (title 200,
description 2,000, genre 50, 50 × 100-character audience and visual items, a 2,000-character error message:
~15 KB a record, the drill's ``big3.py``), with their DLQ entries unless ``--no-entries`` (then every one is a
``dead_without_entry`` finding: the second look reads each again). A fresh ``gamead serve`` is started on it
and asked ``GET /v1/doctor`` once; its RSS before (``VmRSS``), at its peak (``VmHWM``) and after are read from
``/proc/<pid>/status``.

    .venv/bin/python benchmarks/doctor_memory.py --dead 20000
    .venv/bin/python benchmarks/doctor_memory.py --dead 20000 --no-entries
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import nats

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gamead_core import names  # noqa: E402
from gamead_core.ad_ids import new_ad_id  # noqa: E402
from gamead_core.config import GameadSettings  # noqa: E402
from gamead_core.doctor.repair import entry_from_record  # noqa: E402
from gamead_core.embedded import EmbeddedNats  # noqa: E402
from gamead_core.models import AdError, AdRecord, AdStatus, AdSubmission, utcnow  # noqa: E402
from gamead_core.queue.topology import ensure_topology  # noqa: E402
from gamead_core.store.ads import encode  # noqa: E402

BIG = AdSubmission(title="T" * 200, description=("Survive the night against endless waves. " * 50)[:2000],
                   genre="g" * 50, target_audience=["a" * 100] * 50, visual_elements=["v" * 100] * 50,
                   call_to_action="Join", duration=15, priority=3)


async def fill(url: str, dead: int, entries: bool) -> int:
    """``dead`` dead records of :data:`BIG` (and their DLQ entries if ``entries``); returns a record's size."""
    nc = await nats.connect(url)
    js = nc.jetstream(timeout=30)
    await ensure_topology(js, GameadSettings())
    now = utcnow()
    error = AdError(error_class="TaskTimeout", message="m" * 2000, retryable=True, at=now)
    size = 0
    for i in range(dead):
        ad_id = new_ad_id()
        record = AdRecord(id=ad_id, status=AdStatus.DEAD, priority=3, submitted_at=now, ad=BIG, attempts=5,
                          error=error, completed_at=now)
        body = encode(record)
        size = len(body)
        if entries:
            await js.publish_async(names.dlq_subject(ad_id), entry_from_record(record).model_dump_json(
                exclude_none=True, exclude={"seq"}).encode(), headers={names.HDR_AD_ID: ad_id})
        await js.publish_async(f"$KV.{names.ADS_BUCKET}.{ad_id}", body)
        if i % 500 == 499:
            await js.publish_async_completed()
    await js.publish_async_completed()
    await nc.close()
    return size


def status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedNats(Path(tmp) / "nats").start()
        api = None
        try:
            started = time.monotonic()
            size = asyncio.run(fill(server.url, args.dead, not args.no_entries))
            print(f"filled {args.dead:,} dead records of {size:,} bytes in {time.monotonic() - started:.0f} s",
                  file=sys.stderr)
            port = free_port()
            env = {k: v for k, v in os.environ.items() if not k.startswith("GAMEAD_")}
            env.update(GAMEAD_NATS__URL=server.url, GAMEAD_DOCTOR__SETTLE="0.5")
            api = subprocess.Popen([sys.executable, "-m", "gamead_cli", "serve", "--port", str(port)], env=env,
                                   stdout=subprocess.DEVNULL, stderr=open(Path(tmp) / "api.log", "wb"))
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                try:
                    if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.2)
            before = status_kb(api.pid, "VmRSS")
            started = time.monotonic()
            resp = httpx.get(f"{url}/v1/doctor", params={"sample": 3}, timeout=600)
            wall = time.monotonic() - started
            body = resp.json()
            peak, after = status_kb(api.pid, "VmHWM"), status_kb(api.pid, "VmRSS")
        finally:
            if api is not None:
                api.terminate()
                api.wait(30)
            server.stop()
    problems = {f["kind"]: f["count"] for f in body.get("findings", [])}
    read = body.get("read", {})
    print(f"GET /v1/doctor over {args.dead:,} dead records of {size:,} B "
          f"({'no DLQ entries' if args.no_entries else 'with their DLQ entries'}): HTTP {resp.status_code} in "
          f"{wall:.1f} s, findings {problems or 'none'}, partial {body.get('partial')}, "
          f"{read.get('recordReads', 0):,} whole records read, {read.get('payloadBytes', 0) / 2**20:.1f} MiB "
          f"of bodies received")
    print(f"API RSS: before {before:,} kB, peak {peak:,} kB, after {after:,} kB")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dead", type=int, default=20_000)
    parser.add_argument("--no-entries", action="store_true")
    main(parser.parse_args())
