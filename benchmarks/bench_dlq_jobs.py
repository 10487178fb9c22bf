"""How fast DLQ operator jobs go: import, replay (unpaced) and purge of N entries, on real processes.

An embedded nats-server and one `gamead serve` (no worker: replayed ads wait in the work stream, so the
figure is the job's own cost, not the analysis). Each phase is one job over N entries (imports in batches
that fit `api.max_body_bytes`); the figure is entries per second from the job's `startedAt` to the end of its
acting phase (a replay's following phase is skipped: `jobs.follow_timeout=0`), and the API's CPU per entry.

    .venv/bin/python benchmarks/bench_dlq_jobs.py            # N = 2,000
    .venv/bin/python benchmarks/bench_dlq_jobs.py --count 10000
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gamead_core.embedded import EmbeddedNats  # noqa: E402
from benchmarks.needs_test_install import require  # noqa: E402

require(__file__)

from tests.integration.dlq_lane import made_up_entry  # noqa: E402
from tests.support import start_api, wait_for  # noqa: E402


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100  # utime + stime, clock ticks of 10 ms


def run_job(http: httpx.Client, path: str, body: dict) -> dict:
    job = http.post(path, json=body).json()

    def ended() -> dict | None:
        doc = http.get(f"/v1/jobs/{job['id']}").json()
        return doc if doc["state"] not in ("queued", "running") else None

    return wait_for(ended, timeout=3600, interval=0.1, what=f"job {job['id']}")


def seconds(job: dict) -> float:
    start = datetime.fromisoformat(job["startedAt"])
    return (datetime.fromisoformat(job["finishedAt"]) - start).total_seconds()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000, help="entries per job")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gamead-bench-dlq-") as tmp:
        server = EmbeddedNats(Path(tmp) / "nats").start()
        api, url = start_api(server.url, Path(tmp), GAMEAD_JOBS__FOLLOW_TIMEOUT="0", GAMEAD_LOG__LEVEL="WARNING")
        try:
            http = httpx.Client(base_url=url, timeout=60)
            entries = [made_up_entry(f"Bench {i}") for i in range(args.count)]
            rows = []

            def import_all(name: str) -> None:
                cpu, started = cpu_seconds(api.pid), time.monotonic()
                for i in range(0, len(entries), 40):  # 40 entries ≈ 40 KB: under the 64 KiB body limit
                    done = run_job(http, "/v1/dlq/import", {"entries": entries[i:i + 40]})
                    assert done["state"] == "succeeded" and done["counts"]["imported"] == len(entries[i:i + 40])
                rows.append((name, time.monotonic() - started, cpu_seconds(api.pid) - cpu))

            def one_job(name: str, path: str, body: dict) -> None:
                cpu = cpu_seconds(api.pid)
                done = run_job(http, path, body)
                assert done["state"] == "succeeded" and done["counts"]["matched"] == args.count, done
                rows.append((name, seconds(done), cpu_seconds(api.pid) - cpu))

            import_all("import (jobs of 40)")
            one_job("purge", "/v1/dlq/purge", {"all": True, "confirm": True})
            import_all("import of purged ads")
            one_job("replay, unpaced", "/v1/dlq/replay", {"all": True, "rate": 100000})
            print(f"{args.count} entries per job (load average before: {Path('/proc/loadavg').read_text().split()[0]})")
            for name, secs, cpu_used in rows:
                print(f"  {name:22s} {args.count / secs:8.0f} entries/s   {secs:6.2f} s   "
                      f"API CPU {cpu_used / args.count * 1e6:6.0f} µs/entry")
        finally:
            api.stop()
            server.stop()


if __name__ == "__main__":
    main()
