"""Connecting to NATS with the configured credentials, and translating NATS errors at one boundary."""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client as NATS

from gamead_core.config import NatsSettings, check_file
from gamead_core.errors import (ConfigError, Conflict, GameadError, NatsUnreachable, NotFound, QueueFull,
                                QueueUnavailable, StorageFailed, TopologyChanged, TopologyError, TopologyMissing,
                                error_text)
from gamead_core.key_in_process import JS_DUPLICATE_IN_PROCESS, IdempotencyKeyInProcess
from gamead_core.deferred_imports import load
from gamead_core.queue.cas_answer import BUSY, LOST, still_busy, verdict
from gamead_core.queue.closed import note_nats_closed, server_error
from gamead_core.queue.flush_all import flush_in_order
from gamead_core.queue.handshake import pong_required
from gamead_core.queue.headers import install as fast_headers
from gamead_core.queue.liveness import OutboundBacklog, guard_writes
from gamead_core.queue.reader_guard import guard_reader
from gamead_core.queue.refusal import REFUSED, cleared, exit_note, is_refusal, note_closed, note_error
from gamead_core.log_throttle import Throttle
from gamead_core.redact import redact_url
from gamead_core.shutdown import close_connection, close_for_good
from gamead_core.stop_bound import waited

log = logging.getLogger(__name__)
ERROR_LOG_EVERY = 5.0  #: s between two "nats connection error" lines of a client (those between: counted in the next)

# JetStream API error codes, from nats-server's ``server/errors.json`` (the ``error_code`` field of an API
# error; the same numbers appear in the NATS ADRs and the ``nats`` CLI).
JS_ACCOUNT_RESOURCES_EXCEEDED = 10002  #: "resource limits exceeded for account"
JS_CLUSTER_NO_PEERS = 10005  #: "{err}", e.g. "no suitable peers for placement, insufficient storage"
JS_CLUSTER_NOT_AVAILABLE = 10008  #: "JetStream system temporarily unavailable" (no meta leader)
JS_CONSUMER_NOT_FOUND = 10014  #: "consumer not found"
JS_INSUFFICIENT_RESOURCES = 10023  #: "insufficient resources" (a publish over the server's storage limit)
JS_MEMORY_RESOURCES_EXCEEDED = 10028  #: "insufficient memory resources available"
JS_NO_MESSAGE_FOUND = 10037  #: "no message found"
JS_SEQUENCE_NOT_FOUND = 10043  #: "sequence {seq} not found"
JS_STORAGE_RESOURCES_EXCEEDED = 10047  #: "insufficient storage resources available" (creating a stream)
JS_STREAM_MSG_DELETE_FAILED = 10057  #: "{err}", e.g. "no message found" when deleting a gone message
JS_STREAM_NAME_EXISTS = 10058  #: "stream name already in use with a different configuration"
JS_STREAM_NOT_FOUND = 10059  #: "stream not found"
JS_STREAM_WRONG_LAST_MSG_ID = 10070  #: "wrong last msg ID: {id}"
JS_STREAM_WRONG_LAST_SEQUENCE = 10071  #: "wrong last sequence: {seq}" (a lost compare-and-set)
JS_STREAM_STORE_FAILED = 10077  #: "{err}": a stream limit (see _LIMIT_ERRORS) or another store failure
JS_STREAM_SEALED = 10109  #: "invalid operation on sealed stream": only a repartition seals a work stream
JS_STREAM_OFFLINE = 10118  #: "stream is offline"
JS_CONSUMER_OFFLINE = 10119  #: "consumer is offline"
JS_EXPECTED_LAST_SUBJECT_SEQ_NOT_READY = 10163  #: "expected last sequence per subject temporarily unavailable"
JS_STREAM_WRONG_LAST_SEQUENCE_CONSTANT = 10164  #: "wrong last sequence"

#: The ``{err}`` texts of 10077 that mean "this stream is at one of its limits" with ``discard: new``
#: (nats-server ``server/store.go``: ErrMaxMsgs, ErrMaxBytes, ErrMaxMsgsPerSubject); others: a failed store write.
_LIMIT_ERRORS = ("maximum messages exceeded", "maximum bytes exceeded", "maximum messages per subject exceeded")
_STORAGE_CODES = frozenset({JS_ACCOUNT_RESOURCES_EXCEEDED, JS_INSUFFICIENT_RESOURCES, JS_MEMORY_RESOURCES_EXCEEDED,
                            JS_STORAGE_RESOURCES_EXCEEDED})
_MISSING_CODES = frozenset({JS_STREAM_NOT_FOUND, JS_CONSUMER_NOT_FOUND})
_CONFLICT_CODES = frozenset({JS_STREAM_WRONG_LAST_MSG_ID})  #: and a lost compare-and-set (cas_answer.verdict)
_GONE_CODES = frozenset({JS_NO_MESSAGE_FOUND, JS_SEQUENCE_NOT_FOUND})


#: the most a TLS file (CA bundle, certificate chain, key) may weigh; a CA bundle of a whole OS is ~0.3 MiB
MAX_TLS_FILE_BYTES = 4 * 1024 * 1024


def _tls_context(settings: NatsSettings) -> ssl.SSLContext | None:
    """The client TLS context for ``nats.tls_*``, or None. Each named file gets the config file's check first
    (:func:`~gamead_core.config.check_file`: ``ssl`` would block on a FIFO, read ``/dev/zero`` for ever).
    Raises :class:`~gamead_core.errors.ConfigError` for such a file, or one ``ssl`` cannot use, naming it."""
    if not (settings.tls_ca or settings.tls_cert):
        return None
    for what, path in (("nats.tls_ca", settings.tls_ca), ("nats.tls_cert", settings.tls_cert),
                       ("nats.tls_key", settings.tls_key)):
        if path:
            check_file(path, what=what, limit=MAX_TLS_FILE_BYTES)
    try:
        ctx = ssl.create_default_context(cafile=settings.tls_ca)
    except ssl.SSLError as exc:  # a file, but no certificate in it
        raise ConfigError(f"nats.tls_ca {settings.tls_ca} holds no CA certificate ssl can read: "
                          f"{exc.reason or exc}") from exc
    if settings.tls_cert:
        try:
            ctx.load_cert_chain(settings.tls_cert, settings.tls_key)
        except ssl.SSLError as exc:  # not a certificate, no key, or a key of another certificate
            raise ConfigError(f"nats.tls_cert {settings.tls_cert} / nats.tls_key {settings.tls_key or '(none)'}: "
                              f"not a certificate and its key ({exc.reason or exc})") from exc
    return ctx


def connect_options(settings: NatsSettings, url: str, *, name: str) -> dict[str, Any]:
    """Keyword arguments for :func:`nats.connect` from the ``nats`` settings section. A ``ws://``/``wss://``
    server loads aiohttp now (:mod:`gamead_core.deferred_imports`), before any connect's timer runs: nats-py
    imports it inside the connect, where ~100 modules at load 40 outran a 3 s bound (flakes52C)."""
    servers = [u.strip() for u in url.split(",") if u.strip()]
    if any(u.lower().startswith(("ws://", "wss://")) for u in servers):
        load("aiohttp")
    opts: dict[str, Any] = {
        "servers": servers,
        "name": name,
        "connect_timeout": settings.connect_timeout,
        "max_reconnect_attempts": -1,  # keep trying: a NATS restart must not kill the process
        "reconnect_time_wait": 0.5,
        "allow_reconnect": True,
        "drain_timeout": 5,
        # nats-py's defaults (120 s x 2) notice a server that stopped answering only after minutes
        "ping_interval": settings.ping_interval,
        "max_outstanding_pings": settings.max_outstanding_pings,
        # nats-py's own bound (what is buffered while reconnecting; connected, a write over it waits up to
        # flush_timeout): twice gamead's, so the API's check_outbound refuses writes before nats-py blocks them
        "pending_size": 2 * settings.max_pending_bytes,
        "flush_timeout": settings.request_timeout,
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


async def connect(settings: NatsSettings, url: str, *, name: str, retry_for: float = 0.0,
                  on_reconnect: Callable[[], None] | None = None, quiet: bool = False) -> NATS:
    """Connect to NATS, retrying for up to ``retry_for`` seconds; raises :class:`NatsUnreachable` (its message
    names the URL with credentials masked) or :class:`ConfigError` (a TLS file it cannot use; credentials the
    server refuses: at once, never retried). ``on_reconnect`` is called each time the client reconnects; ``quiet``:
    a refusal of the credentials is not logged (another connection of the process says it: api.read_conn)."""
    made: list[NATS] = []  # the client, once connected: a disconnect of a client being closed is no news
    loop = asyncio.get_running_loop()

    def _closing() -> bool:
        return bool(made) and (made[0].is_closed or made[0].is_draining)

    where = redact_url(url)
    last_error: list[Exception] = []  #: what the last attempt met (a timeout of the whole try says nothing)
    throttle = Throttle(every=ERROR_LOG_EVERY, max_kinds=16)  #: nats-py retries every 0.5 s: one line per 5 s a kind

    async def _log_error(exc: Exception) -> None:
        if _closing():
            return
        last_error[:] = [exc]
        if made and note_error(made[0], exc, away=not made[0].is_connected) and not quiet:  # once, not every 0.5 s
            log.error("%s at %s; retrying every 0.5 s, %s", REFUSED, where, exit_note(settings),
                      extra={"nats_url": where, "problem": "credentials_refused"})
        if made and is_refusal(exc):
            return
        left_out = throttle.allow(type(exc).__name__, loop.time())
        if left_out is None:
            return
        away = not made or not made[0].is_connected  # connecting or reconnecting: nats-py tries again
        more = f" ({left_out} more like it in the last {ERROR_LOG_EVERY:g} s)" if left_out else ""
        log.warning("nats connection error at %s: %s%s%s", where, error_text(exc) or type(exc).__name__,
                    "; retrying every 0.5 s" if away else "", more, extra={"nats_url": where, "left_out": left_out})

    async def _disconnected() -> None:
        if not _closing():
            log.warning("disconnected from NATS; reconnecting")

    async def _closed() -> None:  # a token rotated by a config reload: nats-py closes for good, no error_cb
        if made and note_nats_closed(made[0]) is None and note_closed(made[0]) and not quiet:  # others: queue.closed
            log.error("%s at %s; NATS closed the connection (nats-py does not reconnect it), %s", REFUSED, where,
                      exit_note(settings) if settings.refused_exit_after > 0 else "exiting",
                      extra={"nats_url": where, "problem": "credentials_refused"})

    async def _reconnected() -> None:
        log.info("reconnected to NATS")
        if made:
            cleared(made[0])
        if on_reconnect is not None:
            on_reconnect()

    deadline = loop.time() + retry_for
    options = connect_options(settings, url, name=name)  # a bad TLS file: ConfigError now, not per attempt
    while True:
        try:
            # nats-py's first connect keeps trying as long as max_reconnect_attempts allows (-1: for ever, for
            # the reconnects we want); each attempt here is bounded, a cancel it takes too (waited), so retry_for holds
            nc = await waited(nats.connect(
                **options,
                error_cb=_log_error,
                disconnected_cb=_disconnected,
                reconnected_cb=_reconnected,
                closed_cb=_closed,
            ), max(deadline - loop.time(), 0.0) + settings.connect_timeout + 1.0, "a NATS connect",
                unused=close_for_good)  # one that connects after it was given up is closed, not left reconnecting
            made.append(nc)
            guard_reader(nc, settings.stale_after, _closed)  # a close nats-py did not call _closed for, too
            guard_writes(nc, settings.max_pending_bytes)
            fast_headers(nc)  # nats-py's parse of received headers, cheaper (same result)
            pong_required(nc)  # a reconnect closed before its PONG is no reconnect (load59B)
            flush_in_order(nc)  # its flush's PING after what was written before it (flakes51B)
            return nc
        except (OSError, nats.errors.Error, asyncio.TimeoutError) as exc:
            from gamead_core.queue.probe import refused_credentials  # probe imports this module
            cause = last_error[0] if last_error and isinstance(exc, asyncio.TimeoutError) else exc
            if (refused := refused_credentials(cause, url, settings)) is not None:  # a configuration: not retried
                raise refused from exc
            if loop.time() >= deadline:
                raise NatsUnreachable(f"cannot connect to NATS at {redact_url(url)}: {error_text(cause)}") from exc
            await asyncio.sleep(0.5)


def _describe(exc: nats.js.errors.APIError) -> str:
    text = getattr(exc, "description", None) or ""
    code = getattr(exc, "err_code", None)
    return f"{text} (code {code})" if code else text or type(exc).__name__


def is_stream_limit(exc: BaseException) -> bool:
    """True if ``exc`` is JetStream refusing a write because the stream is at ``max_msgs``, ``max_bytes`` or
    ``max_msgs_per_subject`` (error 10077 with the limit's text; nats-server ``server/stream.go``)."""
    return (isinstance(exc, nats.js.errors.APIError) and getattr(exc, "err_code", None) == JS_STREAM_STORE_FAILED
            and (getattr(exc, "description", None) or "").lower().startswith(_LIMIT_ERRORS))


def _translate_api(exc: nats.js.errors.APIError) -> GameadError:
    """An error the JetStream API answered with (``{"code", "err_code", "description"}``)."""
    code = getattr(exc, "err_code", None)
    if (cas := verdict(exc)) == BUSY:  # another write of the key in flight: not decided, never a Conflict (fix35d)
        return still_busy(exc, 1)
    if code == JS_DUPLICATE_IN_PROCESS:  # another publish of this message id is being stored: not NATS away
        return IdempotencyKeyInProcess(f"another write of this message id is being stored: {_describe(exc)}")
    if cas == LOST or code in _CONFLICT_CODES:
        return Conflict(f"the record changed meanwhile: {_describe(exc)}")
    if isinstance(exc, (nats.js.errors.KeyNotFoundError, nats.js.errors.KeyDeletedError)) or code in _GONE_CODES:
        return NotFound("no such record or message")
    if isinstance(exc, nats.js.errors.BucketNotFoundError):
        return TopologyMissing(f"a KV bucket gamead needs is missing: {_describe(exc)}")
    if code in _MISSING_CODES:
        return TopologyMissing(f"a stream or consumer gamead needs is missing: {_describe(exc)}")
    if is_stream_limit(exc):
        return QueueFull(f"the stream is full: {exc.description}")
    if code == JS_STREAM_STORE_FAILED and "too large" in (getattr(exc, "description", None) or ""):
        return QueueUnavailable(f"the message is larger than the stream accepts: {_describe(exc)}")
    if code in _STORAGE_CODES or code == JS_STREAM_STORE_FAILED or (
            code == JS_CLUSTER_NO_PEERS and "storage" in (getattr(exc, "description", None) or "")):
        return StorageFailed(f"JetStream could not store the write: {_describe(exc)}")
    if code == JS_STREAM_SEALED:  # a partition being removed (queue.repartition): this node's setting, not NATS away
        return TopologyChanged(f"the stream is sealed: the queue was repartitioned; {_describe(exc)}")
    if code == JS_STREAM_NAME_EXISTS:
        return TopologyError(f"a stream exists with another configuration: {_describe(exc)}")
    if isinstance(exc, nats.js.errors.NotFoundError):
        return NotFound(f"not found: {_describe(exc)}")
    if isinstance(exc, nats.js.errors.ServiceUnavailableError):
        return QueueUnavailable(f"JetStream is unavailable: {_describe(exc)}")
    return QueueUnavailable(f"JetStream refused the request: {_describe(exc)}")


#: What nats-py raises for a write a connection could not send: closed, reconnecting, draining, without a server or
#: stale, or refused unsent past ``nats.max_pending_bytes`` (:func:`gamead_core.queue.liveness.guard_writes`).
#: :func:`translate` makes it :class:`QueueUnavailable`; a worker says in one line that a reply was not sent.
NOT_SENDING = (nats.errors.ConnectionClosedError, nats.errors.ConnectionReconnectingError,
               nats.errors.ConnectionDrainingError, nats.errors.NoServersError,
               nats.errors.OutboundBufferLimitError, nats.errors.StaleConnectionError)


def translate(exc: BaseException) -> Exception:
    """Map a nats-py exception to the gamead error tree (returned, so the caller can ``raise … from exc``).

    ==========================================================  =============================================
    nats-py error                                               gamead error
    ==========================================================  =============================================
    ``KeyWrongLastSequenceError`` lost, API error 10071/10070  :class:`Conflict` (a lost compare-and-set)
    the same busy (no number), 10164, 10163                     :class:`StillBusy` (503: not decided)
    10158 "duplicate message id is in process"                 :class:`IdempotencyKeyInProcess` (409)
    ``KeyNotFoundError``, ``KeyDeletedError``, 10037, 10043     :class:`NotFound`
    ``BucketNotFoundError``, 10059 stream / 10014 consumer      :class:`TopologyMissing` (503)
    10077 "maximum messages/bytes/… exceeded"                   :class:`QueueFull` (503 ``queue_full``)
    10077 other, 10023, 10002, 10047, 10028                     :class:`StorageFailed` (503)
    10005 "no suitable peers…, insufficient storage"            :class:`StorageFailed`
    10058 "stream name already in use…"                         :class:`TopologyError`
    10109 "invalid operation on sealed stream"                  :class:`TopologyChanged` (a repartition)
    other 404                                                   :class:`NotFound`
    other API errors (503 cluster unavailable, 500, 400)        :class:`QueueUnavailable`
    timeouts (``nats.errors.TimeoutError``, ``asyncio``'s)      :class:`QueueUnavailable` "did not answer in time"
    ``NoStreamResponseError`` (a publish no stream took)        :class:`TopologyMissing` (503 ``topology_missing``)
    ``NoRespondersError``                                       :class:`QueueUnavailable` (JetStream not answering)
    connection errors (closed, reconnecting, no servers, …)     :class:`QueueUnavailable`
    ``OutboundBacklog`` (a write refused, not sent)             :class:`QueueUnavailable` "not taking writes"
    ``InvalidKeyError``, ``BadSubjectError``                    :class:`NotFound` (no record can have that id)
    10077 "message too large", ``MaxPayloadError``               :class:`QueueUnavailable` (over a size limit)
    any other ``nats.errors.Error``                             :class:`QueueUnavailable`
    ==========================================================  =============================================

    Never raises itself, whatever attributes the error lacks; a non-NATS exception is returned unchanged
    (a ``BaseException`` that is not an ``Exception`` as ``RuntimeError``). Messages never contain a URL or
    credentials (nats-py's texts do not; server texts are JetStream descriptions).
    """
    if isinstance(exc, GameadError):
        return exc
    if isinstance(exc, nats.js.errors.APIError):
        return _translate_api(exc)
    if isinstance(exc, (nats.errors.TimeoutError, asyncio.TimeoutError)):
        return QueueUnavailable("NATS did not answer in time")
    if isinstance(exc, nats.js.errors.NoStreamResponseError):  # a JetStream publish nobody took: nothing stored
        return TopologyMissing("no stream took the write: the stream or KV bucket of its subject is missing, or "
                               "(replicated) has no leader right now")
    if isinstance(exc, nats.errors.NoRespondersError):
        return QueueUnavailable("JetStream did not answer: no stream or JetStream server is responding")
    if isinstance(exc, (nats.js.errors.InvalidKeyError, nats.errors.BadSubjectError)):
        return NotFound("not a valid id")
    if isinstance(exc, nats.errors.MaxPayloadError):
        return QueueUnavailable("the message is larger than the NATS server accepts (max_payload)")
    if isinstance(exc, OutboundBacklog):  # refused before it was sent (guard_writes)
        return QueueUnavailable(str(exc))
    if isinstance(exc, NOT_SENDING):
        return QueueUnavailable(f"NATS is unavailable: {server_error(exc)}")  # words, not its class (upreconnect57:
        # "heartbeat failed: NATS is unavailable: ConnectionClosedError")
    if isinstance(exc, nats.errors.Error):
        return QueueUnavailable(f"NATS error: {server_error(exc)}")
    return exc if isinstance(exc, Exception) else RuntimeError(str(exc))


class nats_boundary:  # noqa: N801 - used as a function: ``with nats_boundary():``
    """``with nats_boundary(): await js.…``: every nats-py error (and a timeout) raised inside leaves as the
    matching gamead error (:func:`translate`), chained with ``raise … from exc``. The one NATS error boundary,
    as httpx's ``map_httpcore_exceptions`` is for httpcore. Other exceptions pass through unchanged.

    A class, not a ``@contextmanager`` generator: it is entered twice per submitted ad (issue 14.4)."""

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        if isinstance(exc, (nats.errors.Error, asyncio.TimeoutError)):
            raise translate(exc) from exc


@asynccontextmanager
async def connection(settings: NatsSettings, url: str, *, name: str, retry_for: float = 0.0) -> AsyncIterator[NATS]:
    """``async with connection(...) as nc``: connect, then drain and close on the way out."""
    nc = await connect(settings, url, name=name, retry_for=retry_for)
    try:
        yield nc
    finally:
        await close_connection(nc)
