"""Process plumbing shared by the long-running commands: settings → logging → NATS URL → signals."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable

from gamead_core.config import GameadSettings
from gamead_core.errors import ConfigError, NatsUnreachable

log = logging.getLogger("gamead_cli.runtime")
#: seconds of one round of connection attempts before :func:`reach_nats` says again that NATS is away
REACH_ROUND = 5.0


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


async def reach_nats(settings: GameadSettings, url: str, *, role: str, stop: asyncio.Event | None = None) -> None:
    """Wait until NATS at ``url`` takes a connection (then close it: the role makes its own), for
    ``nats.give_up_after`` seconds (0: for ever). Each round of attempts (:data:`REACH_ROUND` s, nats-py retrying
    every 0.5 s) that fails logs one WARNING naming the URL (credentials masked), the error, how long it has been
    and when it gives up, with fields ``nats_url``, ``waited_seconds``, ``give_up_after``. Raises
    :class:`NatsUnreachable` (exit 3) once ``give_up_after`` has passed. Why keep trying by default: under
    Kubernetes a process that exits is restarted with a growing back-off (CrashLoopBackOff, up to 5 minutes), so
    exiting only delays the recovery once NATS is back; the log line says why it waits. Returns at once when
    ``stop`` is set (checked after each round too: a cancellation that lands as an attempt times out can be
    lost inside ``asyncio.wait_for`` on Python 3.11)."""
    from gamead_core.queue.connection import connect
    from gamead_core.redact import redact_url
    from gamead_core.shutdown import close_connection

    give_up = settings.nats.give_up_after
    loop = asyncio.get_running_loop()
    started = loop.time()
    while stop is None or not stop.is_set():
        left = give_up - (loop.time() - started) if give_up else REACH_ROUND
        try:
            nc = await connect(settings.nats, url, name=f"gamead-{role} start", retry_for=max(0.0, min(REACH_ROUND, left)))
        except NatsUnreachable as exc:
            if stop is not None and stop.is_set():
                return
            waited = loop.time() - started
            if give_up and waited >= give_up:
                raise NatsUnreachable(f"{exc.message}; gave up after {waited:.0f} s (nats.give_up_after "
                                      f"{give_up:g} s)") from exc
            until = f"giving up in {give_up - waited:.0f} s" if give_up else "for ever (nats.give_up_after 0)"
            log.warning("%s cannot reach NATS at %s for %.0f s (%s); trying again now, %s", role, redact_url(url),
                        waited, exc.message.rsplit(": ", 1)[-1], until,
                        extra={"nats_url": redact_url(url), "waited_seconds": round(waited, 1),
                               "give_up_after": give_up})
            continue
        await close_connection(nc)
        if loop.time() - started > REACH_ROUND:
            log.info("%s reached NATS at %s after %.0f s", role, redact_url(url), loop.time() - started)
        return
