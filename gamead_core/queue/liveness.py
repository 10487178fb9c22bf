"""Liveness of a NATS connection: a read loop that died is found and the connection reconnected, round trips
that cannot wedge the client, and the bound on bytes waiting to be sent (``nats.max_pending_bytes``).

nats-py 2.16 can wedge a client for good: a ``flush(timeout)`` that times out leaves its cancelled PONG future
queued; the late PONG's ``set_result`` raises ``InvalidStateError``, the read loop ends (``except Exception:
break``) while the client still says connected and never reconnects (nats-io/nats.py #624, #636, #853). So
gamead never uses ``flush`` as a probe (:func:`round_trip` is a JetStream API request, whose late answer is
dropped), and every connection made by :func:`gamead_core.queue.connection.connect` is guarded
(:func:`guard_reader`): a dead reader is found within a second and the connection reconnected.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import nats.errors
import nats.js.errors
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext

from gamead_core.errors import QueueUnavailable

log = logging.getLogger(__name__)

#: seconds between two looks at a connection's read loop (an attribute read: no traffic)
READER_CHECK_INTERVAL = 1.0


def reader_alive(nc: NATS) -> bool:
    """True while the client's read loop runs (or the client is not connected, when nats-py restarts it on
    reconnect). False means: connected, yet nothing reads the socket; answers and PONGs are never seen."""
    if not nc.is_connected or nc.is_draining:
        return True
    task = getattr(nc, "_reading_task", None)
    return task is not None and not task.done()


def unsent_bytes(nc: NATS | None) -> int:
    """Bytes written by this process and not yet sent to NATS: nats-py's pending buffer plus the socket
    transport's write buffer (``asyncio.WriteTransport.get_write_buffer_size``). 0 for no client."""
    if nc is None:
        return 0
    size = nc.pending_data_size
    writer = getattr(getattr(nc, "_transport", None), "_io_writer", None)
    transport = getattr(writer, "transport", None)
    if transport is not None:
        try:  # (not contextlib.suppress: this runs on every API request)
            size += transport.get_write_buffer_size()
        except Exception:  # noqa: BLE001 - a transport being torn down
            pass
    return max(size, 0)


def outbound_excess(nc: NATS | None, limit: int) -> int | None:
    """The bytes waiting to be sent (:func:`unsent_bytes`) when they are more than ``limit``, else None."""
    waiting = unsent_bytes(nc)
    return waiting if waiting > limit else None


def check_outbound(nc: NATS | None, limit: int) -> None:
    """Refuse a write at once when more than ``limit`` bytes (``nats.max_pending_bytes``) already wait to be
    sent: NATS is connected but not reading (stalled, or a slow network), and buffering more would only grow
    memory. Raises :class:`QueueUnavailable` (503 ``queue_unavailable``)."""
    if (waiting := outbound_excess(nc, limit)) is not None:
        raise QueueUnavailable(f"NATS is not taking writes: {waiting} bytes wait to be sent "
                               f"(nats.max_pending_bytes = {limit})")


def _abort_socket(nc: NATS) -> None:
    writer = getattr(getattr(nc, "_transport", None), "_io_writer", None)
    transport = getattr(writer, "transport", None)
    if transport is not None:
        with contextlib.suppress(Exception):
            transport.abort()  # unsent bytes are dropped: their requests time out and answer 503, never 202


async def recover_reader(nc: NATS) -> bool:
    """If ``nc`` is connected with a dead read loop, drop its socket and let nats-py reconnect
    (``Client.force_reconnect``: a new socket, read loop, flusher and subscriptions). True if it did."""
    if reader_alive(nc) or nc.is_closed or nc.is_reconnecting:
        return False
    log.warning("the NATS client's read loop has died while connected; reconnecting",
                extra={"client": nc.options.get("name")})
    _abort_socket(nc)  # so closing the transport cannot wait on a write buffer a stalled server never reads
    await nc.force_reconnect()
    return True


async def _guard(nc: NATS) -> None:
    while not nc.is_closed:
        try:
            await recover_reader(nc)
        except Exception:  # noqa: BLE001 - a guard must outlive any one failed attempt
            log.exception("recovering the NATS read loop failed; trying again")
        await asyncio.sleep(READER_CHECK_INTERVAL)


#: the guards running, so they are not garbage collected mid-flight (asyncio keeps weak references to tasks)
_GUARDS: set[asyncio.Task[None]] = set()


def guard_reader(nc: NATS) -> None:
    """Watch ``nc`` until it is closed: a dead read loop (see :func:`reader_alive`) is recovered within
    :data:`READER_CHECK_INTERVAL` seconds (:func:`recover_reader`). Called by :func:`connect` for every
    connection; call it for a client made with ``nats.connect`` directly."""
    task = asyncio.get_running_loop().create_task(_guard(nc), name="gamead-nats-reader-guard")
    _GUARDS.add(task)
    task.add_done_callback(_GUARDS.discard)


async def round_trip(js: JetStreamContext) -> bool:
    """One JetStream API request (``$JS.API.INFO``, account info) with the context's timeout: True if the
    server answered anything (account info, or an API error such as "JetStream temporarily unavailable": the
    connection works both ways), False if it did not answer in time or the client is not connected. Unlike
    ``flush(timeout)``, a late answer is dropped harmlessly. Never raises (but ``CancelledError``)."""
    try:
        await js.account_info()
    except (nats.js.errors.APIError, nats.errors.NoRespondersError):
        return True
    except (nats.errors.Error, asyncio.TimeoutError, OSError):
        return False
    return True
