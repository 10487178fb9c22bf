"""A server that exits at start is reported with the end of its log (``gamead_core.embedded``). Before, the whole
log was read into memory to show its last 2,000 characters: a 64 MiB log took a 126 MiB peak; now under 1 MiB."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

from gamead_core.embedded import _log_tail


def test_the_end_of_a_large_log_is_read_without_reading_it_whole(tmp_path: Path) -> None:
    log = tmp_path / "nats-server.log"
    with log.open("w") as file:
        for _ in range(64):
            file.write("[INF] Server is ready\n" * 47_000)  # ~1 MiB of lines
        file.write("[FTL] Error listening on port: 127.0.0.1:4222, \"bind: address already in use\"\n")
    tracemalloc.start()
    try:
        said = _log_tail(log)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert said == '[FTL] Error listening on port: 127.0.0.1:4222, "bind: address already in use"'
    assert peak < 1 << 20, f"{peak / 2**20:.1f} MiB held to read the end of a 64 MiB log"


def test_a_log_that_is_not_there_says_nothing(tmp_path: Path) -> None:
    assert _log_tail(tmp_path / "absent.log") == ""
