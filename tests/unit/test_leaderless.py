"""The API's answer to a write no stream took (gamead_core.api.leaderless) and its 5xx log lines
(gamead_core.log_throttle): pure, no server."""

from __future__ import annotations

from nats.js.errors import NoStreamResponseError

from gamead_core.api.leaderless import leaderless
from gamead_core.errors import NoStreamLeader, QueueUnavailable, TopologyMissing, WorkStreamMissing
from gamead_core.log_throttle import Throttle
from gamead_core.queue.topology import TopologyReport

DETAILS = {"stream": "GAMEAD_ADS", "partition": 0, "subject": "gamead.ads.p3"}


def _no_responders(cls: type[TopologyMissing] = WorkStreamMissing) -> TopologyMissing:
    exc = cls("work stream GAMEAD_ADS does not exist: … run `gamead doctor --repair`", details=DETAILS)
    exc.__cause__ = NoStreamResponseError()
    return exc


def test_no_responders_from_a_stream_the_last_check_found_is_a_leader_election_to_retry() -> None:
    """A reviewer's three-node drills: 80-4,329 submits per fail-over were told the work stream did not exist."""
    out = leaderless(_no_responders(), TopologyReport(objects=()), replicated=True)
    assert isinstance(out, NoStreamLeader) and out.code == "queue_unavailable"
    assert out.details == DETAILS and "no leader answered" in out.message and "doctor" not in out.message
    assert isinstance(out.__cause__, NoStreamResponseError)  # the submit path reads the cause (not stored)


def test_without_a_check_or_with_another_cause_the_answer_stands() -> None:
    whole = TopologyReport(objects=())
    missing = _no_responders()
    assert leaderless(missing, None, replicated=True) is missing  # no check yet: it may well be missing
    assert leaderless(missing, whole, replicated=False) is missing  # one replica: nothing elects a leader
    bucket = _no_responders(TopologyMissing)
    assert isinstance(leaderless(bucket, whole, replicated=True), NoStreamLeader)  # a record's bucket too
    other = TopologyMissing("stream GAMEAD_ADS not found (10059)")
    assert leaderless(other, whole, replicated=True) is other  # JetStream said it is missing
    timeout = QueueUnavailable("NATS did not answer in time")
    assert leaderless(timeout, whole, replicated=True) is timeout


def test_a_burst_of_5xx_logs_one_line_per_code_every_few_seconds_with_the_count_left_out() -> None:
    """One 6 s election wrote 2,852 WARNING lines of 2,889 (one per 503)."""
    throttle = Throttle(every=5.0)
    logged = [throttle.allow("queue_unavailable", 100.0 + i * 0.002) for i in range(2852)]  # 5.7 s
    assert [n for n in logged if n is not None] == [0, 2499]  # at 100 s, then at 105 s: 2,499 left out between
    assert throttle.allow("topology_missing", 106.0) == 0  # another code has its own line
    assert throttle.allow("queue_unavailable", 110.5) == 351


def test_the_throttle_forgets_the_least_recent_kinds_so_memory_stays_bounded() -> None:
    throttle = Throttle(every=5.0, max_kinds=3)
    for i in range(1000):
        assert throttle.allow(f"kind-{i}", 1.0) == 0
    assert len(throttle._kinds) == 3  # noqa: SLF001
