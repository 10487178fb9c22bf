"""Whether the DLQ is full: stream ``GAMEAD_DLQ`` at ``dlq.max_msgs`` (``discard: new``) refuses every new entry.

A full DLQ stops no intake and no analysis: an ad whose dead-lettering it refuses waits ``queued`` (its slot
given back, :mod:`gamead_core.worker.dlq_wait`), and every other ad flows. So ``/readyz`` stays ready; ``/v1/stats``
(``dlq.full``, ``dlq.maxMsgs``) and ``gamead doctor`` (finding ``dlq_full``, what to free) say it (attack31a F5:
they said nothing while every slot of every worker was held).
"""

from __future__ import annotations

from typing import Any

import nats.js.errors
from nats.js import JetStreamContext

from gamead_core import names
from gamead_core.full_stores import DLQ_REMEDY
from gamead_core.queue.connection import nats_boundary
from gamead_core.queue.dlq import is_full, max_msgs_of


async def dlq_reading(js: JetStreamContext) -> tuple[int, int, int | None]:
    """(entries, bytes, ``max_msgs``: None unlimited) of the DLQ; (0, 0, None) while it does not exist (it is
    created on first use). Raises nats-py's errors (the sampler keeps the last reading)."""
    try:
        info = await js.stream_info(names.DLQ_STREAM)
    except nats.js.errors.NotFoundError:
        return 0, 0, None
    return int(info.state.messages or 0), int(info.state.bytes or 0), max_msgs_of(info)


def dlq_section(size: int | None, size_bytes: int | None, max_msgs: int | None) -> dict[str, Any]:
    """``/v1/stats``' ``dlq``: ``size`` (entries), ``bytes``, ``maxMsgs`` (None: unlimited) and ``full``."""
    return {"size": size, "bytes": size_bytes, "maxMsgs": max_msgs, "full": is_full(size, max_msgs)}


async def dlq_full_detail(js: JetStreamContext) -> str | None:
    """The doctor's ``dlq_full`` detail, or None when the DLQ has room (or is missing: another finding says it).
    Raises a :class:`~gamead_core.errors.GameadError` when NATS cannot be read."""
    with nats_boundary():
        size, _, limit = await dlq_reading(js)
    if not is_full(size, limit):
        return None
    return (f"{size} of {limit} entries (dlq.max_msgs): every new dead-lettering is refused; the ads it refuses wait "
            f"queued (error DlqFull) and are retried with back-off; {DLQ_REMEDY}")
