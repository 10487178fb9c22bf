"""`gamead doctor` in memory bounded whatever the store holds (attack31b F9): a run over thousands of ads whose
records are large-but-valid (every field at its limit, ~15 KB a record) never holds their bodies at once. Before,
it kept every record it read whole to the end of the run: 20,000 such dead ads took an API node from 87 MB to
584 MB RSS (1.1 GB when each was a finding), past the 512 MiB its manifest gives it."""

from __future__ import annotations

import asyncio
import tracemalloc
from collections.abc import Callable

import nats

from gamead_core import names
from gamead_core.ad_ids import new_ad_id
from gamead_core.config import GameadSettings
from gamead_core.doctor import diagnose
from gamead_core.embedded import EmbeddedNats
from gamead_core.models import AdError, AdRecord, AdStatus, AdSubmission, utcnow
from gamead_core.queue.topology import ensure_topology
from gamead_core.store.ads import encode

#: 1,500 before load57: 4.3 CPU-s of the test process and 62 s at load ~20, the doctor's 60 s doctor.scan_time passed at
#: load 35-52 (223 of 1,500 found, the report partial); 750 weigh 10.7 MiB, past CEILING had the run kept them whole
DEAD = 750
#: An ad at every field limit (the drill's big3.py): title 200, description 2,000, 50 × 100-character items.
BIG = AdSubmission(title="T" * 200, description=("Survive the night against endless waves. " * 50)[:2000],
                   genre="g" * 50, target_audience=["a" * 100] * 50, visual_elements=["v" * 100] * 50,
                   call_to_action="Join", duration=15, priority=3)
#: Most bytes the run may allocate at once (tracemalloc's peak), generous: 1,500 records weighed 21.4 MiB as JSON;
#: the run allocated 2.0-2.1 MiB at its peak, and 68.5 MiB when it kept every record it read whole.
CEILING = 6 * 2**20
#: the doctor's own read bound (doctor.scan_time, s; 60 by default): out of play, pytest's timeout bounds the test
SCAN_TIME = 600


def test_a_run_over_hundreds_of_large_dead_records_never_holds_their_bodies(
        fresh_nats: Callable[[], EmbeddedNats]) -> None:
    """750 dead records at the field limits, none with its DLQ entry: the doctor finds every one
    (`dead_without_entry`, each read twice: first look and second look) while the most it allocated at once
    stays far below what the records weigh."""
    server = fresh_nats()
    settings = GameadSettings(doctor={"settle": 0.1, "scan_time": SCAN_TIME})

    async def main() -> tuple[dict[str, object], int, int]:
        nc = await nats.connect(server.url)
        js = nc.jetstream(timeout=30)
        try:
            await ensure_topology(js, settings)
            now, size = utcnow(), 0
            error = AdError(error_class="TaskTimeout", message="m" * 2000, retryable=True, at=now)
            for i in range(DEAD):
                record = AdRecord(id=new_ad_id(), status=AdStatus.DEAD, priority=3, submitted_at=now, ad=BIG,
                                  attempts=5, error=error, completed_at=now)
                body = encode(record)
                size += len(body)
                await js.publish_async(f"{names.kv_prefix(names.ADS_BUCKET)}{record.id}", body)
                if i % 500 == 499:
                    await js.publish_async_completed()
            await js.publish_async_completed()
            tracemalloc.start()
            try:
                found = await diagnose(nc, js, settings)
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
            return found.report.wire(3), peak, size
        finally:
            await nc.close()

    report, peak, size = asyncio.run(main())
    assert report["complete"] is True, report["partial"]  # a partial run finds fewer: said first
    assert {f["kind"]: f["count"] for f in report["findings"]} == {"dead_without_entry": DEAD}  # type: ignore[union-attr]
    assert size > 10 * 2**20, "the records are as large as the drill's"
    assert peak < CEILING, f"the run allocated {peak / 2**20:.1f} MiB at its peak (records: {size / 2**20:.1f} MiB)"
