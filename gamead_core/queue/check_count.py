"""The write checks' messages in the work streams, counted where every stats sampler reads them (newcomer55 F1).

A write check (:mod:`gamead_core.queue.write_check`: ``gamead doctor``'s ``store_unwritable`` probe at every run, an
API node's storage probe while a write failure is held) stores one empty message in each work stream and purges
it at once. Each takes a sequence of the stream, and the samplers' ``submittedPerSec`` is the work streams' growth
(:mod:`gamead_core.stats.sampler`): with no ad sent, six ``gamead doctor`` runs made ``gamead top`` say ``queued
0.10 ads/s`` and the autoscaler ``arriving 0.10 ads/s``.

So a check adds the count of its work-stream writes to a cluster-wide counter, key :data:`KEY` of the
``gamead_scaling`` bucket (a decimal number, compare-and-set; :func:`count_checks`), *before* it writes them. Each
sampler reads the key right after the streams' last sequences (:func:`read_checks`), so every check message its
sequences hold is already counted, and takes it off (:func:`gamead_core.stats.queued.queued_sequence`). A check
counted whose write is not stored yet only holds the count back until it is; one not stored (refused, no answer in
time) is taken back once the check is over.
"""

from __future__ import annotations

from nats.js import JetStreamContext

from gamead_core.shared_numbers import MAX_COUNT, count_in
from gamead_core.store.scaling_key import change_key, read_key

#: The counter's key in :data:`gamead_core.names.SCALING_BUCKET`.
KEY = "writes.checked"


async def count_checks(js: JetStreamContext, n: int) -> bool:
    """Add ``n`` work-stream check writes (about to be made; negative: those not stored, taken back) to the
    cluster's counter. Returns whether it was
    written; never raises (a failure is logged: only the samplers' queued rate then counts those writes)."""
    return await change_key(js, KEY, lambda value: str(min(MAX_COUNT, max(0, count_in(value) + n))).encode(),
                            "count the write check's messages")


async def read_checks(js: JetStreamContext) -> int:
    """The cluster's count of work-stream check writes (0 when none was ever counted). Raises NATS errors."""
    return count_in(await read_key(js, KEY))


__all__ = ["KEY", "count_checks", "read_checks"]
