"""A stop's shielded writes (a hand-back's refund tried again while NATS is away) are waited for until the stop's time
for its last writes ends, not cut at 2 × ``nats.request_timeout`` (attack44b F2).

one-2 (``worker.concurrency`` 1, one ad running, NATS frozen, SIGTERM twice): "could not refund its attempt on
hand-back yet … trying again every 0.5s", then "stopping: the shielded settles (acks) did not end within 4 s; cut",
exit 5.5 s into its 22 s bound and 2 s before NATS was back: the ad kept the attempt charged (``attempts`` 2 for one
real failure). Now :func:`gamead_core.worker.drain.drain` waits for them until :class:`LastWrites` says (the drain's
start + ``worker.drain_timeout`` + 3 s), 2 s of it kept for the clean stop's mark."""

from __future__ import annotations

import asyncio
import logging

import pytest

from gamead_core.worker.drain import LastWrites, drain
from gamead_core.worker.shield import Shield
from tests.waits import until

REQUEST_TIMEOUT = 0.25  #: s: the old cut came 2 × this after the drain began


def test_a_shielded_refund_outlasting_two_request_timeouts_is_waited_for(caplog: pytest.LogCaptureFixture) -> None:
    """A shielded write that ends only once the test lets it (a refund waiting for NATS), let well past 2 ×
    ``request_timeout`` (0.5 s) after the drain began (``drain_timeout`` 2 s, nothing in flight): the
    drain waits for it (the write ended, no "did not end … cut" line). Without the fix (drain.py before this change:
    at most 2 × request_timeout): the drain had returned, the write cut and the warning said (0 of 1 waited for)."""
    async def main() -> tuple[bool, bool]:
        loop = asyncio.get_running_loop()
        released, shielded, writes = asyncio.Event(), Shield(), LastWrites(2.0)  # its last writes: 5 s
        write = shielded(released.wait())
        began = loop.time()
        draining = asyncio.create_task(drain(set(), asyncio.Event(), writes, shielded, REQUEST_TIMEOUT))
        await until(lambda: draining.done() or loop.time() > began + 4 * REQUEST_TIMEOUT, timeout=10,
                    what="past the old cut")
        cut_already = draining.done()
        released.set()  # NATS is back: the refund lands
        await asyncio.wait_for(draining, 10)
        ended = (await asyncio.gather(write, return_exceptions=True))[0]
        return cut_already, not isinstance(ended, BaseException)  # (a cut one was cancelled)

    with caplog.at_level(logging.INFO, logger="gamead_core"):
        cut_already, written = asyncio.run(main())
    assert not cut_already, "the drain cut the shielded refund at 2 × request_timeout"
    assert written
    assert not [r for r in caplog.records if "did not end within" in r.getMessage()]
