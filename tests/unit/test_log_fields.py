"""The worker's per-delivery log fields without a context manager (issue 14: the hot path): what a log line
carries while one ad is handled, and after. Pure, no servers."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from gamead_core.logs import ad_fields, pop_ad_fields, push_ad_fields
from gamead_core import names
from gamead_core.worker import handle
from tests.support import json_log_lines


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    with json_log_lines("worker") as out:
        yield out


def test_pushed_fields_are_on_every_line_until_popped(lines: io.StringIO) -> None:
    log = logging.getLogger("gamead_core.test")
    token = push_ad_fields({"ad_id": "01abc", "worker_id": "w1", "priority": 3, "attempt": 1})
    log.info("analysing")
    pop_ad_fields(token)
    log.info("between ads")
    first, second = (json.loads(line) for line in lines.getvalue().splitlines())
    assert {k: first[k] for k in ("ad_id", "worker_id", "priority", "attempt")} == {
        "ad_id": "01abc", "worker_id": "w1", "priority": 3, "attempt": 1}
    assert "ad_id" not in second and "attempt" not in second


def test_pushed_fields_add_to_the_task_fields_and_give_them_back(lines: io.StringIO) -> None:
    log = logging.getLogger("gamead_core.test")
    with ad_fields(worker_id="w9"):
        token = push_ad_fields({"ad_id": "01xyz", "attempt": 2})
        log.info("inside")
        pop_ad_fields(token)
        log.info("after the ad")
    inside, after = (json.loads(line) for line in lines.getvalue().splitlines())
    assert (inside["worker_id"], inside["ad_id"], inside["attempt"]) == ("w9", "01xyz", 2)
    assert after["worker_id"] == "w9" and "ad_id" not in after


def test_the_level_of_a_subject_is_parsed_once_and_the_memo_stays_bounded() -> None:
    assert handle._level(names.level_subject(2)) == 2
    assert handle._level("not.a.level") is None
    for k in range(3 * handle._SUBJECT_LEVELS_MAX):  # any number of odd subjects: the memo does not grow past its bound
        handle._level(f"odd.subject.{k}")
    assert len(handle._SUBJECT_LEVELS) <= handle._SUBJECT_LEVELS_MAX
    assert handle._level(names.level_subject(2)) == 2 and handle._level(f"odd.subject.{10 ** 6}") is None
