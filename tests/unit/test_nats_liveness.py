"""The connection settings that make a stalled NATS visible in seconds and bound what is buffered for it
(issue F1/F3); the behaviour itself is tested on real servers in ``tests/integration/test_nats_stall.py``."""

from __future__ import annotations

import pytest

from gamead_core.config import NatsSettings
from gamead_core.queue.connection import connect_options
from gamead_core.queue.liveness import check_outbound, unsent_bytes


def test_a_stale_connection_is_found_in_seconds_not_minutes() -> None:
    opts = connect_options(NatsSettings(), "nats://a:4222", name="w")
    # nats-py's defaults are 120 s x 2 (a stale connection noticed after 4 minutes); gamead's 10 s x 3
    assert (opts["ping_interval"], opts["max_outstanding_pings"]) == (10.0, 3)
    tuned = connect_options(NatsSettings(ping_interval=2, max_outstanding_pings=5), "nats://a", name="w")
    assert (tuned["ping_interval"], tuned["max_outstanding_pings"]) == (2, 5)


def test_nats_py_buffers_at_most_twice_max_pending_bytes_and_never_waits_longer_than_a_request() -> None:
    opts = connect_options(NatsSettings(max_pending_bytes=1 << 20, request_timeout=1.5), "nats://a", name="w")
    assert opts["pending_size"] == 2 << 20  # gamead's own check (check_outbound) refuses writes first
    assert opts["flush_timeout"] == 1.5
    assert NatsSettings().max_pending_bytes == 4 * 1024 * 1024


def test_max_pending_bytes_has_a_floor() -> None:
    with pytest.raises(ValueError):
        NatsSettings(max_pending_bytes=1000)


def test_no_client_has_nothing_unsent_and_passes_the_check() -> None:
    assert unsent_bytes(None) == 0
    check_outbound(None, 64 * 1024)  # nothing waits: no error


def test_a_server_that_stops_answering_is_left_within_seconds() -> None:
    """The guard's PINGs (gamead_core.queue.reader_guard.check_answers) leave a silent server after nats.stale_after:
    3 s by default, far under nats-py's own 10 s x 3 (tested on a cluster in test_cluster_frozen.py)."""
    assert NatsSettings().stale_after == 3.0
    with pytest.raises(ValueError):
        NatsSettings(stale_after=0)
