"""Process plumbing shared by the long-running commands: settings → logging → NATS URL → signals."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable

from gamead_core.config import GameadSettings
from gamead_core.errors import ConfigError


def require_nats_url(settings: GameadSettings) -> str:
    """The NATS URL a serve/worker process must use; only ``gamead up`` runs an embedded server."""
    if not settings.nats.url:
        raise ConfigError(
            "nats.url is not set: point it at your NATS server (--nats-url, GAMEAD_NATS__URL or config.yaml), "
            "or run `gamead up`, which starts an embedded one"
        )
    return settings.nats.url


def install_stop_signals(stop: asyncio.Event, on_second: Callable[[], None] | None = None) -> None:
    """SIGTERM/SIGINT set ``stop``; a second signal calls ``on_second`` (e.g. skip the drain)."""
    loop = asyncio.get_running_loop()
    seen = {"n": 0}

    def handler() -> None:
        seen["n"] += 1
        stop.set()
        if seen["n"] > 1 and on_second is not None:
            on_second()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, handler)


async def run_until_stopped(work: Awaitable[None], stop: asyncio.Event, *, started: Callable[[], bool]) -> None:
    """Await ``work`` (a role's run, which drains by itself once ``stop`` is set); a stop that comes while
    ``started()`` is still False (e.g. a worker still trying to reach NATS: ``connect`` retries for 30 s and
    a TLS handshake can hang longer) cancels it instead, so SIGTERM and Ctrl-C end the process at once.
    Raises what ``work`` raises."""
    task = asyncio.ensure_future(work)
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if not task.done() and not started():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            return
        await task
    finally:
        stopped.cancel()
