"""Credentials NATS refuses after a connection was made (attack26b F2): a server restarted on the same port with
another token (a ``gamead up`` stack re-started on a fixed ``embedded.nats_port``), or a rotated token.

nats-py then retries for ever, every 0.5 s, each attempt answered ``-ERR 'Authorization Violation'`` (its
``error_cb`` gets ``nats.errors.Error("nats: 'Authorization Violation'")``). A server that keeps the connection but
reloads its config with another token (SIGHUP: the usual rotation) sends it to the connected client instead:
nats-py 2.16 then closes that client for good (``last_error`` an ``AuthorizationError``), with no ``error_cb`` and
no reconnect (review26 F1). Retrying the same credentials cannot help, so:

* :func:`note_error` (from the ``error_cb`` of :func:`gamead_core.queue.connection.connect`) records when the
  refusals began; a successful reconnect clears it, and so do attempts that met only something else (the server
  away) for :data:`REFUSAL_GAP` s: one timeout between two refusals (a loaded machine) does not start a new run
  (which said the refusal again and put the exit off);
  :func:`note_closed` (its ``closed_cb``, or its guard's for a close nats-py said nothing of:
  :mod:`gamead_core.queue.reader_guard`) records the refusal that closed the client;
* :func:`refusal_text` is what ``/readyz``, ``/healthz``, the 503's message and the log say meanwhile:
  ``NATS refuses our credentials: Authorization Violation`` (never "no answer");
* :func:`stop_when_refused` ends the process's run once refusals went on for ``nats.refused_exit_after``
  seconds (30 s by default) with no reconnect in between: :class:`CredentialsRefused`, exit code 5 with one line,
  as at start (:func:`gamead_core.queue.probe.refused_credentials`). ``0`` never exits while nats-py retries (a
  refusal can be brief: an auth callout down, a token rotated on the server before the clients' Secret); a client
  NATS closed for good cannot retry, so that one ends at once (review26 F3);
* :func:`lasting` is when ``/healthz`` turns 503: not before the process would exit (review26 F3: a liveness probe
  must not restart a fleet over a refusal shorter than ``nats.refused_exit_after``).
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
from gamead_core.errors import ConfigError, GameadError, QueueUnavailable
from gamead_core.queue.client_news import news_or, tell

log = logging.getLogger(__name__)

#: what ``/readyz``, ``/healthz``, a 503 and the log say of it
REFUSED = "NATS refuses our credentials: Authorization Violation"
#: what nats-server answers a connection without the credentials it requires (its ``-ERR``), lower-cased
AUTH_VIOLATION = "authorization violation"

#: per client, the monotonic time the refusals began (since its last successful connection)
_SINCE: weakref.WeakKeyDictionary[NATS, float] = weakref.WeakKeyDictionary()
#: per client, the monotonic time of its last refusal
_LAST: weakref.WeakKeyDictionary[NATS, float] = weakref.WeakKeyDictionary()
#: seconds of other errors only (nats-py retries every 0.5 s) after which a run of refusals is over
REFUSAL_GAP = 5.0


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


def note_error(nc: NATS, exc: BaseException, *, away: bool, now: float | None = None) -> bool:
    """Record a connection error of ``nc`` (``away``: met while not connected) at ``now`` (monotonic s, default
    the clock). Returns True for the first refusal of a run of them (the caller says it once); other errors met
    while away end the run once no refusal came for :data:`REFUSAL_GAP` s (the server away, not refusing)."""
    now = time.monotonic() if now is None else now
    tell()  # the watch looks again (stop_when_refused): it waits for this, never polls
    if is_refusal(exc):
        _LAST[nc] = now
        if nc in _SINCE:
            return False
        _SINCE[nc] = now
        return True
    if away and now - _LAST.get(nc, now - REFUSAL_GAP) >= REFUSAL_GAP:
        _SINCE.pop(nc, None)
    return False


def note_closed(nc: NATS) -> bool:
    """``nc`` was closed: if nats-py closed it for a refusal (``last_error`` an ``AuthorizationError``, which only
    its read loop sets, closing the client for good), record it as :func:`note_error` does. Returns True if this
    starts a run of refusals (the caller says it once)."""
    tell()  # a client closed: stop_when_refused looks at once
    if not isinstance(nc.last_error, nats.errors.AuthorizationError) or nc in _SINCE:
        return False
    _SINCE[nc] = _LAST[nc] = time.monotonic()
    return True


def cleared(nc: NATS) -> None:
    """``nc`` (re)connected: NATS took its credentials."""
    _SINCE.pop(nc, None)
    _LAST.pop(nc, None)
    tell()


def refused_for(nc: NATS | None) -> float | None:
    """Seconds NATS has been refusing ``nc``'s credentials, or None (not refused now)."""
    since = _SINCE.get(nc) if nc is not None else None
    return None if since is None else time.monotonic() - since


def _exit_after(nc: NATS | None, settings: NatsSettings) -> float | None:
    """Seconds of refusal after which the process ends: ``nats.refused_exit_after``; with 0, never (None), but at
    once for a client NATS closed (nothing retries it)."""
    if settings.refused_exit_after > 0:
        return settings.refused_exit_after
    return 0.0 if nc is not None and nc.is_closed else None


def exit_note(settings: NatsSettings) -> str:
    """What the log line of a refusal says of the exit to come. Pure."""
    if settings.refused_exit_after > 0:
        return f"exiting after nats.refused_exit_after = {settings.refused_exit_after:g} s of it"
    return "not exiting while it retries (nats.refused_exit_after = 0)"


def lasting(nc: NATS | None, settings: NatsSettings) -> bool:
    """True once NATS has refused ``nc``'s credentials for as long as the process waits before it exits 5
    (``nats.refused_exit_after``; never with 0 while nats-py retries). Pure but for the clock."""
    seconds, limit = refused_for(nc), _exit_after(nc, settings)
    return seconds is not None and limit is not None and seconds >= limit


def refusal_text(nc: NATS | None) -> str | None:
    """``NATS refuses our credentials: Authorization Violation (for N s)`` while it does, else None."""
    seconds = refused_for(nc)
    return None if seconds is None else f"{REFUSED} (for {seconds:.0f} s)"


async def stop_when_refused(nc_of: Callable[[], NATS | None], settings: NatsSettings, url: str,
                            stop: asyncio.Event | None = None, *, every: float = 0.5,
                            closed_note: str = "") -> GameadError | None:
    """Look at the client ``nc_of()`` returns at each news of it (:mod:`.client_news`: an error, a reconnect, a
    close; never on a timer while it is connected, so an idle process is not woken by it), and when a run of
    refusals would last: once NATS has refused its credentials for ``settings.refused_exit_after`` seconds, log it
    as an ERROR and return the :class:`CredentialsRefused` to end the process with (its message:
    :func:`~gamead_core.queue.probe.refused_credentials`'s, with how long). A client nats-py closed for good on
    another server error (:mod:`gamead_core.queue.closed`) ends it at once the same way with
    :class:`~gamead_core.queue.closed.NatsClosed` (exit 3; ``closed_note`` appended to its message). While
    ``nc_of()`` is None (the API setting its connection up) it looks every ``every`` s. Returns None once ``stop``
    is set; never returns otherwise with ``refused_exit_after`` 0 (:func:`lasting`)."""
    from gamead_core.queue.closed import NatsClosed, closed_text
    from gamead_core.queue.probe import refused_credentials

    while stop is None or not stop.is_set():
        nc = nc_of()
        if (closed := closed_text(nc)) is not None:
            gone = NatsClosed(f"{closed}; nats-py does not reconnect a client the server closed on this error, "
                              f"only a restart does{closed_note}: exiting")
            log.error("%s", gone.message, extra={"problem": "nats_closed"})
            return gone
        if lasting(nc, settings):
            seconds = refused_for(nc) or 0.0
            base = refused_credentials(Exception(REFUSED), url, settings)
            assert base is not None
            exc = CredentialsRefused(f"{base.message}; refused for {seconds:.0f} s after it had connected "
                                     f"(nats.refused_exit_after = {settings.refused_exit_after:g} s)"
                                     f"{'; NATS closed the connection' if nc is not None and nc.is_closed else ''}: "
                                     "exiting")
            log.error("%s", exc.message, extra={"problem": "credentials_refused"})
            return exc
        await news_or(stop, _until_lasting(nc, settings, every))
    return None


def _until_lasting(nc: NATS | None, settings: NatsSettings, every: float) -> float | None:
    """Seconds until a run of refusals of ``nc`` lasts (:func:`lasting`), a little past it; None while it is not
    refused (the next news says when it is); ``every`` while there is no client yet."""
    if nc is None:
        return every
    seconds, limit = refused_for(nc), _exit_after(nc, settings)
    return None if seconds is None or limit is None else max(limit - seconds, 0.0) + 0.01


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
    ``nats.refused_exit_after`` s (:func:`stop_when_refused`), or its client closed by nats-py. Each sets ``stop``
    (the worker drains) and raises its error (exit 5; a closed client: ``NatsClosed``, exit 3); returns None once
    ``stop`` is set otherwise."""
    from gamead_core.queue.partition_watch import stop_if_repartitioned

    held = ("; the ads it held cannot be handed back: NATS redelivers them after "
            f"queue.ack_wait = {settings.queue.ack_wait:g} s")
    refused = asyncio.ensure_future(stop_when_refused(lambda: nc, settings.nats, url, stop, closed_note=held))
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
