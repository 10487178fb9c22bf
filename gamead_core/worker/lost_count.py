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
import re

from nats.js import JetStreamContext

from gamead_core import names, shared_numbers
from gamead_core.worker.scaling_key import change_key, read_key

log = logging.getLogger(__name__)

#: The counter's key in :data:`gamead_core.names.SCALING_BUCKET`.
KEY = "attempts.lost"


async def count_lost(js: JetStreamContext, n: int = 1) -> bool:
    """Add ``n`` lost-and-retried attempts to the cluster's counter. Returns whether it was written; never raises
    (a failure is logged: the attempt is charged in its record all the same, only the count misses it)."""
    return await change_key(js, KEY, lambda value: str((0 if value is None else _number(value)) + n).encode(),
                            "count a lost attempt")


async def read_lost(js: JetStreamContext) -> int:
    """The cluster's count of lost-and-retried attempts (0 when none was ever counted). Raises NATS errors."""
    return _number(await read_key(js, KEY))


#: The largest count the key may hold: the largest integer a float (a Prometheus sample, a rate) holds exactly.
#: A value past it is unusable, as a negative or non-numeric one is (attack31b F5: ``10**400`` made every API
#: node's ``/metrics`` a 500 and stopped ``gamead up``'s stats sampler with ``OverflowError``).
MAX_COUNT = shared_numbers.MAX_COUNT
_said: list[bytes] = []  #: the unusable value last logged (each value is said once, not at every sample)


def unusable(value: bytes | None) -> str | None:
    """Why the key's ``value`` is no count gamead can use (a decimal integer from 0 to :data:`MAX_COUNT`),
    clipped to 40 characters; None when it is one (or absent). Pure."""
    text = (value or b"0")[:4400].decode("utf-8", "replace").strip()
    shown = text if len(text) <= 40 else f"{text[:37]}… ({len(value or b'')} bytes)"
    if not re.fullmatch(r"[+-]?[0-9]+", text):
        return f"{shown!r} is not a decimal integer"
    if len(text) > 20 or not 0 <= int(text) <= MAX_COUNT:
        return f"{shown} is outside 0 … 2**53"
    return None


def _number(value: bytes | None) -> int:
    """The count in ``value``; 0 for an unusable one (:func:`unusable`, logged once per value): the next lost
    attempt then rewrites the key as 1."""
    why = unusable(value)
    if why is None:
        return int((value or b"0").decode())
    if _said != [value or b""]:
        _said[:] = [value or b""]
        log.warning("the shared counter %s (KV %s) holds a value gamead cannot use: %s; read as 0 (the next lost "
                    "attempt rewrites it as 1)", KEY, names.SCALING_BUCKET, why)
    return 0


__all__ = ["KEY", "MAX_COUNT", "count_lost", "read_lost", "unusable"]
