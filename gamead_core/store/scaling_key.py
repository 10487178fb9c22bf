"""One key of the shared ``gamead_scaling`` bucket changed by compare-and-set, as every node may change it at once:
the lost-attempt counter (:mod:`gamead_core.worker.lost_count`), the write checks' counter
(:mod:`gamead_core.queue.check_count`) and the poison trace
(:mod:`gamead_core.worker.poison_trace`). A KV bucket's ``update(last=revision)`` is JetStream's optimistic
concurrency (ADR-8): a loser reads again and retries, a bounded number of times; a busy answer (another write of
the key in flight on R3, :mod:`gamead_core.queue.cas_answer`) is sent again first, and read again if still busy."""

from __future__ import annotations

import logging
from collections.abc import Callable

import nats.errors
import nats.js.errors
from nats.js import JetStreamContext
from nats.js.kv import KeyValue

from gamead_core import names
from gamead_core.errors import error_text
from gamead_core.store.cas import StillBusy, create_key, retry_busy

log = logging.getLogger(__name__)

#: compare-and-set rounds before a change gives up (logged)
TRIES = 10


def scaling_bucket(js: JetStreamContext) -> KeyValue:
    """The ``gamead_scaling`` bucket, read from its stream (no direct gets: a replica may lag behind a write)."""
    return KeyValue(name=names.SCALING_BUCKET, stream=names.kv_stream(names.SCALING_BUCKET),
                    pre=names.kv_prefix(names.SCALING_BUCKET), js=js, direct=False)


async def read_key(js: JetStreamContext, key: str) -> bytes | None:
    """``key``'s current value in the bucket; None when there is no such key (never written, or deleted). Raises
    NATS errors."""
    try:
        return (await scaling_bucket(js).get(key)).value
    except (nats.js.errors.KeyNotFoundError, nats.js.errors.KeyDeletedError):
        return None


async def change_key(js: JetStreamContext, key: str, change: Callable[[bytes | None], bytes], what: str) -> bool:
    """Write ``change(value)`` over ``key``'s current value (None: no such key, then created), by compare-and-set,
    reading again after each lost race, at most :data:`TRIES` times. Returns whether it was written; never raises:
    a NATS error or a key that kept changing is logged as ``could not <what> (<key>): …``."""
    kv = scaling_bucket(js)
    for _ in range(TRIES):
        try:
            try:
                entry = await kv.get(key)
            except (nats.js.errors.KeyNotFoundError, nats.js.errors.KeyDeletedError):
                await create_key(kv, key, change(None))
                return True
            await retry_busy(lambda: kv.update(key, change(entry.value), last=entry.revision))
            return True
        except (nats.js.errors.KeyWrongLastSequenceError, StillBusy):
            continue  # another node changed it meanwhile: read it again
        except (nats.errors.Error, TimeoutError, OSError) as exc:
            log.warning("could not %s (%s): %s", what, key, error_text(exc))
            return False
    log.warning("could not %s (%s): it kept changing", what, key)
    return False


__all__ = ["TRIES", "change_key", "read_key", "scaling_bucket"]
