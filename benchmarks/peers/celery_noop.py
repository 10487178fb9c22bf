"""A Celery app with one no-op task, broker ``BENCH_PEER_BROKER`` (a Valkey URL), no result backend:
``celery -A celery_noop worker -P solo`` is the peer of one gamead worker process in ``bench_peers.py``."""

from __future__ import annotations

import os

from celery import Celery
from tally import tally

app = Celery("bench_peers", broker=os.environ.get("BENCH_PEER_BROKER", "redis://127.0.0.1:6379/0"))
app.conf.update(task_ignore_result=True, worker_hijack_root_logger=False, broker_connection_retry_on_startup=True)


@app.task(name="noop")
def noop() -> None:
    """Nothing but the count."""
    tally()


if __name__ == "__main__":  # `python celery_noop.py N`: send N tasks (the backlog), then exit
    import sys

    with app.producer_or_acquire() as producer:
        for _ in range(int(sys.argv[1])):
            app.send_task("noop", producer=producer)
