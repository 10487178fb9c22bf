"""nats-server's clock sampled from a KV put a process makes anyway (:func:`sample_stamp`)."""

from __future__ import annotations

import logging

from nats.js import JetStreamContext

from gamead_core import clock

log = logging.getLogger(__name__)


async def sample_stamp(js: JetStreamContext, stream: str, revision: int, sent: float, received: float, *,
                       direct: bool = False) -> bool:
    """Sample nats-server's clock (:mod:`gamead_core.clock`) from any KV put a process makes anyway: ``revision``
    is the put's stream sequence in ``stream``, ``sent``/``received`` the :func:`gamead_core.clock.local` readings
    just before the put and just after its acknowledgement. Reads the stored message back (one get, ``direct`` if
    the stream allows it) and notes its stamp. True if a sample was taken; never raises (a missed sample keeps the
    last anchor). Used by :meth:`Registry.put` (heartbeats) and the lease keeper's writes (review33 R8: a process
    that holds or judges a lease but keeps no registry entry, ``gamead up``'s autoscaler, samples there)."""
    try:
        stored = await js.get_msg(stream, seq=revision, direct=direct)
    except Exception as exc:  # noqa: BLE001 - a missed sample keeps the last anchor
        log.debug("clock sample skipped: %r", exc)
        return False
    if stored.time is None:
        return False
    clock.CLOCK.note(sent, stored.time.timestamp(), received)
    return True


__all__ = ["sample_stamp"]
