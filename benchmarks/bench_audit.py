"""The audit trail's costs: writing a record, reading the newest page, a filtered scan, and what the audit
middleware adds to a request that is not an operator action (the submit hot path).

Run on demand (never a test): ``.venv/bin/python benchmarks/bench_audit.py [--records 20000]``. Starts its own
nats-server (embedded, free port, temporary data dir) and stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import nats  # noqa: E402

from gamead_core.api.audit_gate import AuditGate  # noqa: E402
from gamead_core.audit.log import AuditLog, audit_stream_config  # noqa: E402
from gamead_core.audit.model import AuditFilter, AuditRecord  # noqa: E402
from gamead_core.config import GameadSettings  # noqa: E402
from gamead_core.embedded import EmbeddedNats  # noqa: E402


def record(n: int) -> AuditRecord:
    return AuditRecord(at=datetime.now(timezone.utc), action="replay" if n % 3 else "scale.set", outcome="accepted",
                       actor=f"op{n % 7}", role="operator", client="10.0.4.9", request_id=f"req-{n}",
                       method="POST", path="/v1/dlq/replay", job_id="01m8n9yn14df8p4qjad0cnvqad",
                       selection={"mode": "ids", "ids": 12, "fence": 40, "limit": 10000}, ads=12)


async def trail(url: str, records: int) -> None:
    settings = GameadSettings()
    nc = await nats.connect(url)
    js = nc.jetstream(timeout=5)
    await js.add_stream(audit_stream_config(settings.audit, settings.queue))
    log = AuditLog(lambda: js, settings.audit)
    started = time.perf_counter()
    for n in range(records):
        await log.write(record(n))
    write = (time.perf_counter() - started) / records
    info = await js.stream_info("GAMEAD_AUDIT")
    print(f"write: {write * 1e3:.2f} ms per record (awaited, one at a time); {records:,} records, "
          f"{info.state.bytes / records:.0f} bytes each in the stream")

    for label, flt in (("newest 50, no filter", AuditFilter()),
                       ("newest 50 of one actor (1 in 7)", AuditFilter(actor="op3")),
                       ("a filter nothing matches (reads audit.scan_limit)", AuditFilter(actor="nobody"))):
        samples = []
        for _ in range(5):
            t = time.perf_counter()
            page = await log.page(flt, limit=50)
            samples.append(time.perf_counter() - t)
        print(f"GET /v1/audit {label}: median {statistics.median(samples) * 1e3:.0f} ms, "
              f"{page.scanned:,} records read, complete={page.complete}")
    await nc.close()


def middleware_overhead() -> None:
    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        return None

    gate = AuditGate(app, GameadSettings())
    scope = {"type": "http", "method": "POST", "path": "/ads", "headers": []}

    async def run(target, n: int) -> float:  # type: ignore[no-untyped-def]
        t = time.perf_counter()
        for _ in range(n):
            await target(scope, None, None)
        return (time.perf_counter() - t) / n

    n = 200_000
    bare = asyncio.run(run(app, n))
    gated = asyncio.run(run(gate, n))
    print(f"audit middleware on POST /ads (not an operator action): +{(gated - bare) * 1e6:.2f} µs per request")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=20_000)
    args = parser.parse_args()
    middleware_overhead()
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedNats(Path(tmp) / "nats").start()
        try:
            asyncio.run(trail(server.url, args.records))
        finally:
            server.stop()


if __name__ == "__main__":
    main()
