"""A fault a test means to land in the middle of a bulk ``gamead submit`` run: counted from NATS, checked after.

flake55: three outage tests waited for "500 ads queued" through the API's ``GET /ads`` while the run drained the
API's rate limit (one bucket per client address: the test's GETs got 429 and counted 0), so on a loaded machine
(load ~40) they saw the count only once the run had sent every ad; the fault then came after the last ad and the
test failed on figures it was never about (``sent 2000, notSent 0``; ``outage until None``). Here the count is
read from NATS (the work streams' messages, no API token spent), and :func:`assert_left` says plainly when a
fault still came too late, instead of a figure the fault never had a chance to change."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.support import wait_for, work_streams


def queued(nats_url: str) -> int:
    """How many ads the work streams of the NATS at ``nats_url`` hold (a connection of the test's own)."""
    return sum(stream["messages"] for stream in work_streams(nats_url).values())


def wait_queued(nats_url: str, cli: subprocess.Popen[str], at_least: int, err: Path | None = None) -> None:
    """Wait (60 s at most) until ``at_least`` ads of ``cli``'s run are queued in NATS; fail if ``cli`` ended
    first (its stderr ``err`` in the message when given)."""
    wait_for(lambda: cli.poll() is not None or queued(nats_url) >= at_least, timeout=60,
             what=f"{at_least} ads of the run queued")
    said = err.read_text() if err is not None and err.exists() else ""
    assert cli.poll() is None, f"the run ended before {at_least} of its ads were queued: {said}"


def assert_left(queued_then: int, count: int, left: int, fault: str) -> None:
    """The premise of a mid-run fault: when ``fault`` came, at most ``count - left`` of the run's ``count`` ads
    were queued (``queued_then``, read from NATS), so at least ``left`` were still to be sent."""
    assert queued_then <= count - left, (
        f"premise not met: {fault} was to come with at least {left} of the run's {count} ads still to send, but "
        f"{queued_then} were queued by then (the machine let the run outpace the test); its figures would say "
        f"nothing about the fault")
