"""attack38a F4 on a real nats-server: a server too small for the default topology (``max_file_store`` 1 GB, the record
bucket alone reserving 4 GiB). ``gamead worker`` refuses to start in one line naming the object that could not be
placed, what gamead's objects reserve in all and the settings they come from, and the server's setting (before:
"JetStream could not store the write: … insufficient storage (code 10005)" on a cluster, the same without a word of what
to change on one server)."""

from __future__ import annotations

from pathlib import Path

from gamead_core.embedded import EmbeddedNats
from tests.support import clean_env, run_gamead


def test_a_server_too_small_for_the_topology_is_told_what_to_lower(tmp_path: Path) -> None:
    server = EmbeddedNats(tmp_path / "nats", max_file="1GB").start()
    try:
        started = run_gamead("worker", env=clean_env(GAMEAD_NATS__URL=server.url, GAMEAD_NATS__GIVE_UP_AFTER="5"),
                             cwd=tmp_path, timeout=60)
    finally:
        server.stop()
    print(started.returncode, started.stderr)
    line = started.stderr.strip().splitlines()[-1]  # after the worker's JSON log lines: its one error line
    assert started.returncode != 0 and line.startswith("error: ") and "Traceback" not in started.stderr
    assert "could not be placed" in line and "records.max_bytes 4.0 GiB" in line and "max_file_store" in line
