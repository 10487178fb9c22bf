"""Connecting to NATS with the configured credentials, and translating NATS errors at one boundary."""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import AsyncIterator, Awaitable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any, TypeVar

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext

from gamead_core.config import NatsSettings
from gamead_core.errors import QueueFull, QueueUnavailable

log = logging.getLogger(__name__)
T = TypeVar("T")

#: JetStream API error codes that mean "the stream is at a limit".
_FULL_CODES = {10077, 10047, 10027}  # maximum messages exceeded, insufficient resources, max bytes


def _tls_context(settings: NatsSettings) -> ssl.SSLContext | None:
    if not (settings.tls_ca or settings.tls_cert):
        return None
    ctx = ssl.create_default_context(cafile=settings.tls_ca)
    if settings.tls_cert:
        ctx.load_cert_chain(settings.tls_cert, settings.tls_key)
    return ctx


def connect_options(settings: NatsSettings, url: str, *, name: str) -> dict[str, Any]:
    """Keyword arguments for :func:`nats.connect` from the ``nats`` settings section."""
    opts: dict[str, Any] = {
        "servers": [u.strip() for u in url.split(",") if u.strip()],
        "name": name,
        "connect_timeout": settings.connect_timeout,
        "max_reconnect_attempts": -1,  # keep trying: a NATS restart must not kill the process
        "reconnect_time_wait": 0.5,
        "allow_reconnect": True,
        "drain_timeout": 5,
    }
    if settings.user:
        opts["user"] = settings.user
    if settings.password:
        opts["password"] = settings.password.get_secret_value()
    if settings.token:
        opts["token"] = settings.token.get_secret_value()
    if tls := _tls_context(settings):
        opts["tls"] = tls
    return opts


async def connect(settings: NatsSettings, url: str, *, name: str, retry_for: float = 0.0) -> NATS:
    """Connect to NATS, retrying for up to ``retry_for`` seconds; raises :class:`QueueUnavailable`."""

    async def _log_error(exc: Exception) -> None:
        log.warning("nats connection error: %s", exc)

    async def _disconnected() -> None:
        log.warning("disconnected from NATS; reconnecting")

    async def _reconnected() -> None:
        log.info("reconnected to NATS")

    loop = asyncio.get_running_loop()
    deadline = loop.time() + retry_for
    while True:
        try:
            return await nats.connect(
                **connect_options(settings, url, name=name),
                error_cb=_log_error,
                disconnected_cb=_disconnected,
                reconnected_cb=_reconnected,
            )
        except (OSError, nats.errors.Error, asyncio.TimeoutError) as exc:
            if loop.time() >= deadline:
                raise QueueUnavailable(f"cannot connect to NATS at {url}: {exc or type(exc).__name__}") from exc
            await asyncio.sleep(0.5)


def translate(exc: BaseException) -> Exception:
    """Map a nats-py exception to a gamead error (returned, so the caller can ``raise … from exc``)."""
    if isinstance(exc, nats.js.errors.APIError) and getattr(exc, "err_code", None) in _FULL_CODES:
        return QueueFull(f"the work queue is full: {exc.description}")
    if isinstance(exc, nats.js.errors.NoStreamResponseError):
        return QueueUnavailable("JetStream did not answer: the stream may be missing or the server down")
    if isinstance(exc, (nats.errors.TimeoutError, asyncio.TimeoutError)):
        return QueueUnavailable("NATS did not answer in time")
    if isinstance(exc, (nats.errors.ConnectionClosedError, nats.errors.ConnectionReconnectingError,
                        nats.errors.NoServersError, nats.errors.OutboundBufferLimitError,
                        nats.errors.StaleConnectionError, nats.errors.NoRespondersError)):
        return QueueUnavailable(f"NATS is unavailable: {type(exc).__name__}")
    if isinstance(exc, nats.js.errors.ServiceUnavailableError):
        return QueueUnavailable(f"JetStream is unavailable: {getattr(exc, 'description', None) or exc}")
    if isinstance(exc, nats.errors.Error):
        return QueueUnavailable(f"NATS error: {exc}")
    return exc if isinstance(exc, Exception) else RuntimeError(str(exc))


@contextmanager
def nats_boundary() -> Iterator[None]:
    """``with nats_boundary(): await js.…``: every nats-py error (and a timeout) raised inside leaves as the
    matching gamead error (:func:`translate`), chained with ``raise … from exc``. The one NATS error boundary,
    as httpx's ``map_httpcore_exceptions`` is for httpcore. Other exceptions pass through unchanged."""
    try:
        yield
    except (nats.errors.Error, asyncio.TimeoutError) as exc:
        raise translate(exc) from exc


async def guarded(call: Awaitable[T]) -> T:
    """Await a NATS call, translating its errors into the gamead tree."""
    try:
        return await call
    except (nats.errors.Error, asyncio.TimeoutError) as exc:
        raise translate(exc) from exc


@asynccontextmanager
async def connection(settings: NatsSettings, url: str, *, name: str, retry_for: float = 0.0) -> AsyncIterator[NATS]:
    """``async with connection(...) as nc``: connect, then drain and close on the way out."""
    nc = await connect(settings, url, name=name, retry_for=retry_for)
    try:
        yield nc
    finally:
        try:
            await asyncio.wait_for(nc.drain(), timeout=5)
        except Exception:  # noqa: BLE001 - closing must never raise over the real error
            await nc.close()



async def delete_if_present(js: JetStreamContext, stream: str, seq: int) -> bool:
    """Delete one stream message; False (not an error) if it is already gone."""
    try:
        return bool(await js.delete_msg(stream, seq))
    except nats.js.errors.NotFoundError:
        return False
    except nats.js.errors.APIError as exc:
        if exc.err_code == 10057 or "not found" in (exc.description or "").lower():
            return False  # "no message found" / "sequence N not found": someone deleted it first
        raise translate(exc) from exc
    except (nats.errors.Error, asyncio.TimeoutError) as exc:
        raise translate(exc) from exc
