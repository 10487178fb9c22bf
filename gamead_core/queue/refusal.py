"""Credentials NATS refuses after a connection was made (attack26b F2): a server restarted on the same port with
another token (a ``gamead up`` stack re-started on a fixed ``embedded.nats_port``), or a rotated token.

nats-py then retries for ever, every 0.5 s, each attempt answered ``-ERR 'Authorization Violation'`` (its
``error_cb`` gets ``nats.errors.Error("nats: 'Authorization Violation'")``, or ``AuthorizationError`` from a
connected client's read loop). Retrying the same credentials cannot help, so:

* :func:`note_error` (from the ``error_cb`` of :func:`gamead_core.queue.connection.connect`) records when the
  refusals began; a successful reconnect, or an attempt that met anything else (the server away), clears it;
* :func:`refusal_text` is what ``/readyz``, ``/healthz``, the 503's message and the log say meanwhile:
  ``NATS refuses our credentials: Authorization Violation`` (never "no answer");
* :func:`stop_when_refused` ends the process's run once refusals went on for ``nats.refused_exit_after``
  seconds (30 s by default) with no reconnect in between: :class:`CredentialsRefused`, exit code 5 with one line,
  as at start (:func:`gamead_core.queue.probe.refused_credentials`).
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Callable
from typing import Any

import nats.errors
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext

from gamead_core.config import GameadSettings, NatsSettings
from gamead_core.errors import ConfigError, QueueUnavailable

log = logging.getLogger(__name__)

#: what ``/readyz``, ``/healthz``, a 503 and the log say of it
REFUSED = "NATS refuses our credentials: Authorization Violation"
#: what nats-server answers a connection without the credentials it requires (its ``-ERR``), lower-cased
AUTH_VIOLATION = "authorization violation"

#: per client, the monotonic time the refusals began (since its last successful connection)
_SINCE: weakref.WeakKeyDictionary[NATS, float] = weakref.WeakKeyDictionary()


class RefusedNow(QueueUnavailable):
    """A request of the API answered 503 ``queue_unavailable`` while NATS refuses its credentials: its message
    (:func:`refusal_text`, no URL) is what the client is told."""

    client_message = None


class CredentialsRefused(ConfigError):
    """NATS went on refusing this process's credentials for ``nats.refused_exit_after`` seconds after it had
    connected: trying again cannot help (exit code 5)."""


def is_refusal(exc: BaseException) -> bool:
    """True if ``exc`` is nats-server refusing the credentials (``Authorization Violation``). Pure."""
    return isinstance(exc, nats.errors.AuthorizationError) or AUTH_VIOLATION in str(exc).lower()


def note_error(nc: NATS, exc: BaseException, *, away: bool) -> bool:
    """Record a connection error of ``nc`` (``away``: met while not connected). Returns True for the first
    refusal of a run of them (the caller says it once); another error met while away ends the run."""
    if is_refusal(exc):
        if nc in _SINCE:
            return False
        _SINCE[nc] = time.monotonic()
        return True
    if away:
        _SINCE.pop(nc, None)
    return False


def cleared(nc: NATS) -> None:
    """``nc`` (re)connected: NATS took its credentials."""
    _SINCE.pop(nc, None)


def refused_for(nc: NATS | None) -> float | None:
    """Seconds NATS has been refusing ``nc``'s credentials, or None (not refused now)."""
    since = _SINCE.get(nc) if nc is not None else None
    return None if since is None else time.monotonic() - since


def refusal_text(nc: NATS | None) -> str | None:
    """``NATS refuses our credentials: Authorization Violation (for N s)`` while it does, else None."""
    seconds = refused_for(nc)
    return None if seconds is None else f"{REFUSED} (for {seconds:.0f} s)"


async def stop_when_refused(nc_of: Callable[[], NATS | None], settings: NatsSettings, url: str,
                            stop: asyncio.Event | None = None, *, every: float = 0.5) -> CredentialsRefused | None:
    """Look every ``every`` s at the client ``nc_of()`` returns; once NATS has refused its credentials for
    ``settings.refused_exit_after`` seconds, log it as an ERROR and return the :class:`CredentialsRefused` to end
    the process with (its message: :func:`~gamead_core.queue.probe.refused_credentials`'s, with how long). Returns
    None once ``stop`` is set."""
    from gamead_core.queue.probe import refused_credentials

    while stop is None or not stop.is_set():
        seconds = refused_for(nc_of())
        if seconds is not None and seconds >= settings.refused_exit_after:
            base = refused_credentials(Exception(REFUSED), url, settings)
            assert base is not None
            exc = CredentialsRefused(f"{base.message}; refused for {seconds:.0f} s after it had connected "
                                     f"(nats.refused_exit_after = {settings.refused_exit_after:g} s): exiting")
            log.error("%s", exc.message, extra={"problem": "credentials_refused"})
            return exc
        await asyncio.sleep(every)
    return None


async def serve_until_refused(nc_of: Callable[[], NATS | None], settings: NatsSettings, url: str,
                              state: Any) -> None:
    """The API's :func:`stop_when_refused`: the error goes to ``state.refused`` and ``state.stop_serving()`` is
    called (``gamead serve`` sets it: uvicorn stops, then it raises ``state.refused``: exit 5). Cancel it to end."""
    exc = await stop_when_refused(nc_of, settings, url)
    if exc is not None:
        state.refused = exc
        if (stop := getattr(state, "stop_serving", None)) is not None:
            stop()


async def stop_if_stale(nc: NATS, js: JetStreamContext, settings: GameadSettings, url: str,
                        stop: asyncio.Event) -> None:
    """The worker's watch of what ends it: the queue repartitioned under it
    (:func:`~gamead_core.queue.partition_watch.stop_if_repartitioned`) or its credentials refused for
    ``nats.refused_exit_after`` s (:func:`stop_when_refused`). Either sets ``stop`` (the worker drains) and raises
    its :class:`~gamead_core.errors.ConfigError` (exit 5); returns None once ``stop`` is set otherwise."""
    from gamead_core.queue.partition_watch import stop_if_repartitioned

    refused = asyncio.ensure_future(stop_when_refused(lambda: nc, settings.nats, url, stop))
    moved = asyncio.ensure_future(stop_if_repartitioned(js, settings, stop))
    try:
        await asyncio.wait({refused, moved}, return_when=asyncio.FIRST_COMPLETED)
        if refused.done() and (exc := refused.result()) is not None:
            stop.set()
            raise exc
        await moved
    finally:
        refused.cancel()
        moved.cancel()
