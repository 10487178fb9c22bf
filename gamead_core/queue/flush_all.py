"""A flush that nats-server answers only once it has read every byte this client wrote before it (flakes51B).

nats-py 2.16's ``flush()`` writes its ``PING`` straight to the socket (``Client._send_ping``), while the publishes
and subscriptions made just before it wait in the client's pending buffer until its flusher task's next turn. So
the ``PING`` goes out ahead of them: on the wire, ``publish(a); flush()`` is ``PING``, ``PUB a``, and the server's
``PONG`` says nothing of ``a``. A ``PUB``/``SUB`` that reached the server in a later read than the ``PING`` (a
loaded machine) was not yet taken when the flush returned: a fresh clone's ``make test`` at load 12-19 saw a
confirmed announcement (:func:`gamead_core.worker.confirm.confirm_held`) missing at a subscriber that asked the
server after it.

:func:`flush_all` hands the pending buffer to the socket first, as the flusher's next turn would (the same lines),
then flushes: the ``PING`` follows every byte written before it, and nats-server reads a connection's bytes in
order. :func:`flush_in_order` makes a client's own ``flush`` so (:func:`gamead_core.queue.connection.connect` does it
for every client of gamead's): nats-py's ``Subscription.drain`` is ``UNSUB``, then ``flush()``, its ``PONG`` meant to
follow every delivery the server made before it took the ``UNSUB`` (a worker's stop hands those back: chaos47 F1);
with the ``PING`` ahead of the ``UNSUB``, a delivery routed between them came after the drain and was thrown away.
"""

from __future__ import annotations

from nats.aio.client import Client as NATS

#: nats-py's default flush timeout (s)
FLUSH_TIMEOUT = 10.0


def _send_pending(nc: NATS) -> None:
    """Hand ``nc``'s pending buffer to its socket now, as nats-py's flusher task does on its turn. Not connected
    (reconnecting), it is left to nats-py, which sends it once connected again."""
    if nc.is_connected and nc._pending:  # noqa: SLF001 - nats-py has no public way to send its buffer now
        nc._transport.writelines(nc._pending[:])  # noqa: SLF001 - as its _flusher does, in the same order
        nc._pending = []  # noqa: SLF001
        nc._pending_data_size = 0  # noqa: SLF001


async def flush_all(nc: NATS, timeout: float = FLUSH_TIMEOUT) -> None:
    """``nc.flush(timeout)``, answered once nats-server has read everything written on ``nc`` before this call.
    Raises what ``nc.flush`` raises (its timeout: ``nats.errors.FlushTimeoutError``)."""
    _send_pending(nc)
    await nc.flush(timeout)


def flush_in_order(nc: NATS) -> None:
    """From now on ``nc.flush`` is :func:`flush_all`'s: nats-py's own callers of it (a subscription's or the
    client's drain) too."""
    flush = nc.flush

    async def in_order(timeout: float = FLUSH_TIMEOUT) -> None:
        _send_pending(nc)
        await flush(timeout)  # type: ignore[arg-type]

    nc.flush = in_order  # type: ignore[method-assign]


__all__ = ["FLUSH_TIMEOUT", "flush_all", "flush_in_order"]
