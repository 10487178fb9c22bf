"""Shared values no node can use (attack31b F5): the cluster's lost-attempts counter, the autoscaler's lease and
the manual scaling override, each one key that every API node reads (KV ``gamead_scaling``, ``gamead_leases``).

A value gamead did not write (a hand edit, a buggy tool) and cannot use — ``attempts.lost`` past ``2**53`` or not
a number, a lease or override naming a time past year 9999 or not JSON — is read by every node as none (0 for the
counter; logged once) instead of failing its ``/metrics`` or stats sampler; the doctor names it, with what it
holds, as the note ``unusable_shared_value``. One KV read per key (3 API calls). Nothing to repair: the next
write (a lost attempt counted, a lease taken, an override set) replaces it.
"""

from __future__ import annotations

import nats.errors
from nats.js import JetStreamContext
from nats.js.kv import KeyValue

from gamead_core import names
from gamead_core.doctor.model import ReadStats
from gamead_core.scaling.lease import AUTOSCALER_LEASE, Lease
from gamead_core.scaling.store import OVERRIDE_KEY, Override
from gamead_core.shared_numbers import unusable_count
from gamead_core.worker import lost_count


def _counter(data: bytes) -> str | None:
    why = unusable_count(data)
    return None if why is None else f"{why} (read as 0; the next lost attempt rewrites it)"


def _lease(data: bytes) -> str | None:
    return None if Lease.from_json(data) is not None else "not a lease gamead wrote (read as no lease)"


def _override(data: bytes) -> str | None:
    return None if Override.from_json(data) is not None else "not an override gamead wrote (read as none)"


#: (bucket, key, why its value is unusable: None when usable)
CHECKS = (
    (names.SCALING_BUCKET, lost_count.KEY, _counter),
    (names.LEASES_BUCKET, AUTOSCALER_LEASE, _lease),
    (names.SCALING_BUCKET, OVERRIDE_KEY, _override),
)


async def unusable_values(js: JetStreamContext, stats: ReadStats) -> dict[str, str]:
    """``"<bucket> <key>"`` → what is wrong with its value, for each shared value of :data:`CHECKS` that holds
    one gamead cannot use. A key that is absent, deleted or cannot be read is skipped (a missing bucket is the
    topology check's). Never raises for NATS errors."""
    out: dict[str, str] = {}
    for bucket, key, why in CHECKS:
        kv = KeyValue(name=bucket, stream=names.kv_stream(bucket), pre=names.kv_prefix(bucket), js=js, direct=False)
        stats.api_calls += 1
        try:
            entry = await kv.get(key)
        except (nats.errors.Error, TimeoutError, OSError):
            continue
        if entry.value and (problem := why(entry.value)):
            out[f"{bucket} {key}"] = problem
    return out


__all__ = ["CHECKS", "unusable_values"]
