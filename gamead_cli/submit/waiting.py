"""Following the ads ``gamead submit --wait`` sent until their analyses end (completed, failed or dead) or its
``--timeout`` passes: one ad with a spinner, many with a progress bar and their latency percentiles."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from gamead_cli.client import ApiClient
from gamead_cli.program import follow_up
from gamead_cli.stderr_wait import StderrWait
from gamead_cli.submit.views import progress_bar
from gamead_core.errors import GameadError

TERMINAL = frozenset({"completed", "failed", "dead"})


FAILED = frozenset({"failed", "dead"})


def wait_for_ad(client: ApiClient, ad_id: str, timeout: float) -> dict[str, Any]:
    """Poll ``GET /ads/{id}`` until the ad is completed, failed or dead, or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    interval = 0.1
    status = "queued"
    with StderrWait(f"waiting for ad {ad_id} ({status})") as spinner:  # a CI log too (leftout60)
        while True:
            record = client.get_ad(ad_id)
            status = str(record.get("status"))
            if status in TERMINAL:
                spinner.finish(f"ad {ad_id} {status}")
                return record
            spinner.update(f"waiting for ad {ad_id} ({status})")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise GameadError(
                    f"ad {ad_id} is still {status} after {timeout:g}s"
                    f" — check later with: {follow_up('ads', 'get', ad_id, again=client.again)}"
                )
            time.sleep(min(interval, remaining))
            interval = min(interval * 1.5, 1.0)


def completion_latency(record: Mapping[str, Any]) -> float | None:
    """Seconds from an ad's submit to its completion; None unless it completed: a dead ad's ``completedAt`` is
    when it was dead-lettered, which the summary's ``latency … (submit → completed)`` row is not (attack45 F7:
    5 ads dead, 0 completed, printed ``p50 8ms · p95 9ms (submit → completed)``). Pure."""
    if record.get("status") != "completed":
        return None
    try:
        start = datetime.fromisoformat(str(record["submittedAt"]))
        end = datetime.fromisoformat(str(record["completedAt"]))
    except (KeyError, ValueError, TypeError):
        return None
    return (end - start).total_seconds()


def wait_many(client: ApiClient, ids: list[str], *, timeout: float, concurrency: int) -> dict[str, Any]:
    """Poll the accepted ads until all are terminal or ``timeout`` passes; return the wait summary: counts by
    status, latencies (seconds) and ``failedIds``, the ads of ``ids`` that ended failed or dead, in their order."""
    pending = list(ids)
    final: dict[str, tuple[str, float | None]] = {}  #: id → (status, latency): not the whole record (~2 KB)
    window = max(64, concurrency * 8)

    def fetch(ad_id: str) -> dict[str, Any] | None:
        try:
            return client.get_ad(ad_id)
        except GameadError:  # a transient failure: try again next round
            return None

    deadline = time.monotonic() + timeout
    interrupted = False
    with progress_bar() as progress, ThreadPoolExecutor(concurrency, thread_name_prefix="gamead-wait") as pool:
        task = progress.add_task("analysing", total=len(ids), info="")
        try:
            while pending:
                batch = pending[:window]
                for ad_id, record in zip(batch, pool.map(fetch, batch), strict=True):
                    if record is not None and record.get("status") in TERMINAL:
                        final[ad_id] = (str(record.get("status")), completion_latency(record))
                done = set(final)
                pending = [i for i in pending if i not in done]
                failed = sum(1 for status, _ in final.values() if status in FAILED)
                progress.update(task, completed=len(final), info=f"{failed} failed" if failed else "")
                remaining = deadline - time.monotonic()
                if not pending or remaining <= 0:
                    break
                time.sleep(min(0.25, remaining))
        except KeyboardInterrupt:  # stop waiting; the summary says what finished so far
            interrupted = True

    # the one percentile definition (imports nats: on use)
    from gamead_core.registry import percentiles

    statuses = Counter(status for status, _ in final.values())
    ended = [ad_id for ad_id in ids if ad_id in final and final[ad_id][0] in FAILED]  # input order
    latencies = [lat for _, lat in final.values() if lat is not None]
    spread = percentiles(latencies)
    p50, p95 = (spread.p50, spread.p95) if latencies else (None, None)
    summary: dict[str, Any] = {
        "completed": statuses["completed"],
        "failed": statuses["failed"],
        "dead": statuses["dead"],
        "pending": len(pending),
        "failedIds": ended,  # which ended failed or dead (newcomer59: the count alone named none of them)
        "latencyP50Seconds": round(p50, 3) if p50 is not None else None,
        "latencyP95Seconds": round(p95, 3) if p95 is not None else None,
    }
    if interrupted:
        summary["interrupted"] = True
    return summary
