"""News of a NATS client that can end the process: a refusal of its credentials, a reconnect, a close (idle56).

The callbacks nats-py calls (``error_cb``, ``reconnected_cb``, ``closed_cb``: :func:`gamead_core.queue.connection.
connect`; a close nats-py did not call ``closed_cb`` for: the connection's guard, :mod:`gamead_core.queue.reader_guard`)
record that news (:mod:`gamead_core.queue.refusal`, :mod:`gamead_core.queue.closed`) and :func:`tell` it;
:func:`~gamead_core.queue.refusal.stop_when_refused` waits for it in :func:`news_or` instead of looking every 0.5 s,
so an idle API or worker is not woken by this watch at all (issue 14 item 1).
"""

from __future__ import annotations

import asyncio

#: the futures of the watches waiting now, each resolved by the next :func:`tell`
_WAITING: set[asyncio.Future[None]] = set()


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


def tell() -> None:
    """Wake every watch waiting in :func:`news_or` (from any thread: each on its own loop). Never raises."""
    for fut in list(_WAITING):
        loop = fut.get_loop()
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            _resolve(fut)
        elif not loop.is_closed():
            loop.call_soon_threadsafe(_resolve, fut)


async def news_or(stop: asyncio.Event | None, timeout: float | None) -> None:
    """Return at the next :func:`tell`, once ``stop`` is set, or after ``timeout`` s (None: no bound), whichever
    comes first. Never raises but for a cancel."""
    fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    _WAITING.add(fut)
    stopping = asyncio.ensure_future(stop.wait()) if stop is not None else None
    try:
        await asyncio.wait({fut} if stopping is None else {fut, stopping}, timeout=timeout,
                           return_when=asyncio.FIRST_COMPLETED)
    finally:
        _WAITING.discard(fut)
        fut.cancel()
        if stopping is not None:
            stopping.cancel()
