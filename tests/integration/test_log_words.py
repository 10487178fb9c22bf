"""Log lines an operator reads say things in words (ops13 finding 5): a worker stopped cleanly says it released
the reaper lease (not "lost", which reads like a fault), and a repair action's line says what it did, not the
job's one-letter mark (``repair dead_without_entry <id>: W``)."""

from __future__ import annotations

import signal
from pathlib import Path

from gamead_core.jobs.model import Mark
from gamead_core.jobs.policy import mark_words
from tests.support import Proc, start_worker, wait_for


def test_a_worker_stopped_with_sigint_released_the_reaper_lease(fresh_nats, procs: list[Proc],  # noqa: ANN001
                                                                 tmp_path: Path) -> None:
    server = fresh_nats()
    worker = start_worker(server.url, tmp_path, worker_id="w1", ready=True)
    procs.append(worker)
    wait_for(lambda: "acquired the reaper lease" in worker.output(), timeout=30, what="the reaper lease")
    worker.signal(signal.SIGINT)
    wait_for(lambda: not worker.alive(), timeout=30, what="the worker to stop")
    out = worker.output()
    assert "released the reaper lease" in out, out[-3000:]
    assert "lost the reaper lease" not in out, out[-3000:]


def test_every_mark_reads_as_words() -> None:
    marks = [v for k, v in vars(Mark).items() if k.isupper() and isinstance(v, str)]
    assert len(marks) > 20
    for mark in marks:
        words = mark_words(mark)
        assert len(words) > 3 and not words.startswith("mark "), (mark, words)
    assert mark_words(Mark.ENTRY_WRITTEN) == "DLQ entry written"
