"""Analysis attempts charged for a crashed worker, counted where every API node reads them (attack29a F11).

An attempt lost with its worker (``WorkerLost``: charged by whoever recovers the death,
:mod:`gamead_core.worker.reaper`, or found unfinished by the ad's next delivery, :func:`~gamead_core.worker.budget.
lost_attempt`) has no worker left to count it: the crashed process's counters die with it, and the recovery is
often made by ``gamead up``'s supervisor, which serves no metrics. Before, such attempts moved no counter or rate
(``processed{retried}`` 0, ``retriedPerSec`` 0, FAILED 0 through a whole crash loop, until the final death).

So the one who charges it adds one to a cluster-wide counter, key :data:`KEY` of the ``gamead_scaling`` bucket
(a decimal number, compare-and-set): only the writer that won the record's compare-and-set counts, so a death
recovered several times is counted once. Only attempts that will be *retried* are counted here: the last one
(budget spent) ends in the DLQ and is counted ``dead`` by the worker that dead-letters it. Every API node's
stats sampler reads the key (:func:`read_lost`): ``/v1/stats`` ``retriedPerSec`` adds its increase, and the API
serves it as ``gamead_attempts_lost_total``.
"""

from __future__ import annotations

import logging

from nats.js import JetStreamContext

from gamead_core import names
from gamead_core.shared_numbers import count_in, unusable_count
from gamead_core.store.scaling_key import change_key, read_key

log = logging.getLogger(__name__)

#: The counter's key in :data:`gamead_core.names.SCALING_BUCKET`.
KEY = "attempts.lost"


async def count_lost(js: JetStreamContext, n: int = 1) -> bool:
    """Add ``n`` lost-and-retried attempts to the cluster's counter. Returns whether it was written; never raises
    (a failure is logged: the attempt is charged in its record all the same, only the count misses it)."""
    return await change_key(js, KEY, lambda value: str(_number(value) + n).encode(),
                            "count a lost attempt")


async def read_lost(js: JetStreamContext) -> int:
    """The cluster's count of lost-and-retried attempts (0 when none was ever counted). Raises NATS errors."""
    return _number(await read_key(js, KEY))


_said: list[bytes] = []  #: the unusable value last logged (each value is said once, not at every sample)


def _number(value: bytes | None) -> int:
    """The count in ``value``; 0 for an unusable one (:func:`gamead_core.shared_numbers.unusable_count`, logged once
    per value): the next lost attempt then rewrites the key as 1."""
    why = unusable_count(value)
    if why is not None and _said != [value or b""]:
        _said[:] = [value or b""]
        log.warning("the shared counter %s (KV %s) holds a value gamead cannot use: %s; read as 0 (the next lost "
                    "attempt rewrites it as 1)", KEY, names.SCALING_BUCKET, why)
    return count_in(value)


__all__ = ["KEY", "count_lost", "read_lost"]
