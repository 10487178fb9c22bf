"""polish47: a time in human output reads as every other time on its screen, ``20:58:40 UTC`` (with its date when
it is not today's: :func:`gamead_core.times.clock_utc`), never an ISO stamp. ``scale status`` said ``leadership
lapsed 2026-12-05T20:58:38Z to 2026-12-05T20:58:40Z`` beside ``updated 20:58:40 UTC``; the doctor's stuck-lease
detail ``until 2026-12-04T02:45:10Z``, its repair's wait ``released at …Z`` and a job's ``lease ended …Z``. The
JSON documents' time fields stay ISO."""

from __future__ import annotations

import re
from datetime import datetime, timezone

from gamead_core.doctor.leases import stuck_text, waiting_text
from gamead_core.scaling.lease import Lease
from gamead_core.times import clock_utc

ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d")
NOW = datetime(2026, 12, 5, 20, 58, 40, tzinfo=timezone.utc).timestamp()


def test_a_time_of_today_is_its_clock_and_another_day_says_its_date() -> None:
    assert clock_utc(NOW - 2, NOW) == "20:58:38 UTC"
    assert clock_utc(NOW + 2 * 86400, NOW) == "2026-12-07 20:58:40 UTC"
    assert clock_utc(NOW - 21 * 3600, NOW) == "2026-12-04 23:58:40 UTC"


def test_the_doctors_lease_texts_say_times_as_the_house_does() -> None:
    stuck = stuck_text("reaper", Lease("worker-gone", NOW - 100, NOW - 1, NOW + 4), NOW, 5.0, ["worker-1"])
    assert stuck is not None and "held by worker-gone until 20:58:44 UTC:" in stuck and not ISO.search(stuck), stuck
    ahead = stuck_text("autoscaler", Lease("up-host-1", NOW - 100, NOW - 1, NOW + 86400), NOW, 15.0, None)
    assert ahead is not None and "until 2026-12-06 20:58:40 UTC:" in ahead and not ISO.search(ahead), ahead
    wait = waiting_text("reaper", Lease("worker-gone", NOW - 100, NOW - 1, NOW + 3600), 50.0, NOW + 50, NOW)
    assert "released at 20:59:30 UTC if it is still unchanged then" in wait and not ISO.search(wait), wait
