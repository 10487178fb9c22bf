"""newcomer59: every JSON line a worker logs names it (``worker_id``), not only the lines of an ad's task. Before,
the worker's reaper lease (``acquired the reaper lease (local-2)``), fault-injection, long-poll and shutdown lines
said its id in words or not at all, so ``jq 'select(.worker_id == "local-2")'`` left them out (5 of the 7 lines of
this test's worker). Without the fix: 1 failed, 1 error; with it: 2 passed."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gamead_core import logs
from gamead_core.embedded import EmbeddedNats
from tests.support import json_log_lines, start_worker, wait_for


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    saved = dict(logs._NODE_FIELDS)
    with json_log_lines("worker") as out:
        yield out
    logs._NODE_FIELDS.clear()
    logs._NODE_FIELDS.update(saved)


def test_the_process_id_is_on_every_line_but_one_naming_another(lines: io.StringIO) -> None:
    log = logging.getLogger("gamead_core.scaling.lease")
    logs.node_fields(worker_id="local-2")
    log.info("acquired the reaper lease (local-2)")
    log.info("recovered a dead worker's ads", extra={"worker_id": "local-7"})  # the reaper's line: the dead one's
    with logs.ad_fields(worker_id="local-3"):
        log.info("an ad's task line")
    said = [json.loads(line)["worker_id"] for line in lines.getvalue().splitlines()]
    assert said == ["local-2", "local-7", "local-3"]


def test_every_line_of_a_running_worker_names_it(fresh_nats: Callable[[], EmbeddedNats], tmp_path: Path) -> None:
    """A nats-server of its own: on the session's, another module's worker may hold the reaper lease, and this one
    never logs taking it (mid59: no lease line in 30 s)."""
    proc = start_worker(fresh_nats().url, tmp_path, worker_id="wlog", ready=True, GAMEAD_LOG__FORMAT="json",
                        GAMEAD_WORKER__FAULTS__RATE="0.5", GAMEAD_WORKER__FAULTS__MATCH="never-matches")
    try:
        wait_for(lambda: "lease" in proc.output(), timeout=30, what="the worker's reaper lease line")
    finally:
        proc.stop()
    records = [json.loads(line) for line in proc.output().splitlines() if line.startswith("{")]
    after = records  # the first line too: the id is known before anything is logged
    missing = [r["message"][:80] for r in after if r.get("worker_id") != "wlog"]
    assert len(after) >= 3 and not missing, missing
