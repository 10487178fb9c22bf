"""Pure: a level that cannot be read is retried with a doubling back-off (0.5 … 5 s) and cleared by a read;
a failure of the pull itself is cleared only by a pull answered normally (gamead_core.queue.level_health)."""

from __future__ import annotations

from gamead_core.queue import level_health
from gamead_core.queue.level_health import LEVEL_BACKOFF, LEVEL_BACKOFF_CAP, LevelHealth


def test_a_failing_level_backs_off_doubling_up_to_the_cap_and_recovers() -> None:
    health = LevelHealth()
    backoffs = []
    for _ in range(6):
        health.failed(2, "consumer gamead_p2 not found")
        backoffs.append(health._health[2].backoff)
    assert backoffs == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0] and (LEVEL_BACKOFF, LEVEL_BACKOFF_CAP) == (0.5, 5.0)
    assert health.failing_levels() == [2] and not health.readable(2) and health.readable(1)
    health.failed(2, "another reason")  # a new reason starts the back-off again
    assert health._health[2].backoff == LEVEL_BACKOFF
    health.ok(2)
    assert health.failing_levels() == [] and health.readable(2)


def test_a_failed_pull_is_cleared_only_by_a_pull() -> None:
    health = LevelHealth()
    health.failed(4, "its pull request was not answered", in_pull=True)
    health.ok(4)  # a consumer_info read is not a pull
    assert health.failing_levels() == [4]
    health.ok(4, by_pull=True)
    assert health.failing_levels() == []
    assert level_health.log.name == "gamead_core.queue.pull"  # the puller's log lines keep their logger


def test_a_pull_ended_by_a_leader_change_is_an_answer_and_a_deleted_consumer_a_failure() -> None:
    """A worker's no_wait pull judges its end by the rule whole-stream reads use (pull_status.verdict): before, every
    409 set the level aside with back-off, a ``409 Leadership Change`` in a cluster too (1 of 3 ends → 0)."""
    from nats.aio.msg import Msg

    from gamead_core.queue.pull_request import _ended

    def end(status: str, description: str) -> Msg:
        headers = {"Status": status, "Description": description}
        return Msg(_client=None, subject="_INBOX.x.1", headers=headers)  # type: ignore[arg-type]

    health = LevelHealth()
    for status, description in (("404", "No Messages"), ("409", "Leadership Change"), ("409", "Server Shutdown")):
        _ended(health, 3, "gamead_p3", status, end(status, description))
        assert health.failing_levels() == [], (status, description)
    _ended(health, 3, "gamead_p3", "409", end("409", "Consumer Deleted"))
    assert health.failing_levels() == [3] and health._health[3].reason == "pull answered 409 Consumer Deleted"
