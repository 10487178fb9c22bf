"""The CLI's HTTP transport: httpx over httpcore with a deadline on the whole request (client37, from attack36 F3).

httpx's timeouts bound each socket operation, and its read timeout starts again at every byte: a server (a broken
proxy, a stub, another service at ``--api``) that sends ``HTTP/1.1 200 OK\\r\\n`` then a header byte a second, or
takes the request body a byte at a time, was waited on for ever. Here every connect, TLS handshake, write and read
of a request made under :func:`answer_deadline` is cut to the seconds left before that deadline (a
``time.monotonic()`` value), and one that would start past it raises httpcore's timeout of its kind, which httpx
raises as ``httpx.ConnectTimeout`` / ``WriteTimeout`` / ``ReadTimeout``: the request's head, its body, the
answer's head and its body all end by the deadline, whatever the server does. The deadline is a ``ContextVar``:
each thread (``submit --count``'s senders, ``gamead top``'s fetches) has its own, and a connection of the pool
serves the deadline of whichever request uses it. Outside :func:`answer_deadline` (a follow stream's body) only
httpx's own timeouts apply.

Built on httpcore's public API (``ConnectionPool(network_backend=…)``, ``HTTPProxy``, ``NetworkBackend``,
``NetworkStream``). A proxy the environment names for the API (:func:`proxy_for`: ``HTTP_PROXY``, ``HTTPS_PROXY``,
``ALL_PROXY``, less ``NO_PROXY``) is used as httpx would use it, through the same deadline (regress37 F3: with this
transport given, httpx set up no proxy from the environment and the CLI connected directly).
"""

from __future__ import annotations

import contextlib
import functools
import ssl
import time
import urllib.request
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from typing import Any

import httpcore
import httpx

from gamead_core.errors import ConfigError

#: the ``time.monotonic()`` by which the request in flight in this context must be done (None: no deadline)
_DEADLINE: ContextVar[float | None] = ContextVar("gamead_request_deadline", default=None)
#: a request body is written this many bytes at a time, each write cut to the time left
_PIECE = 16 * 1024


@contextlib.contextmanager
def answer_deadline(at: float | None) -> Iterator[None]:
    """Within the block, every socket operation of this context's requests ends by ``at`` (``time.monotonic()``;
    None: no deadline)."""
    token = _DEADLINE.set(at)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def _left(timeout: float | None, late: type[Exception]) -> float | None:
    """``timeout`` cut to the seconds left before this context's deadline; raises ``late`` once it has passed."""
    at = _DEADLINE.get()
    if at is None:
        return timeout
    left = at - time.monotonic()
    if left <= 0:
        raise late("the request's deadline passed")
    return left if timeout is None else min(timeout, left)


class _Stream(httpcore.NetworkStream):
    """A connection whose every operation is cut to the deadline of the request using it."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        for start in range(0, len(buffer), _PIECE):
            self._inner.write(buffer[start:start + _PIECE], _left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context: Any, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        return _Stream(self._inner.start_tls(ssl_context, server_hostname, _left(timeout, httpcore.ConnectTimeout)))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _Backend(httpcore.NetworkBackend):
    """httpcore's sync backend, its connections :class:`_Stream`."""

    def __init__(self) -> None:
        self._inner = httpcore.SyncBackend()

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Iterable[Any] | None = None) -> httpcore.NetworkStream:
        return _Stream(self._inner.connect_tcp(host, port, _left(timeout, httpcore.ConnectTimeout), local_address,
                                               socket_options))

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Iterable[Any] | None = None) -> httpcore.NetworkStream:
        return _Stream(self._inner.connect_unix_socket(path, _left(timeout, httpcore.ConnectTimeout), socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


#: httpcore's errors → httpx's, the most specific first (as httpx's own transport maps them)
_ERRORS: tuple[tuple[type[Exception], type[httpx.HTTPError]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout), (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout), (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException), (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError), (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError), (httpcore.ProxyError, httpx.ProxyError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError), (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
)


@contextlib.contextmanager
def _as_httpx() -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        for theirs, ours in _ERRORS:
            if isinstance(exc, theirs):
                raise ours(str(exc)) from exc
        raise


class _Body(httpx.SyncByteStream):
    def __init__(self, inner: Iterable[bytes]) -> None:
        self._inner = inner

    def __iter__(self) -> Iterator[bytes]:
        with _as_httpx():
            yield from self._inner

    def close(self) -> None:
        if hasattr(self._inner, "close"):
            self._inner.close()


def proxy_for(api_url: str) -> str | None:
    """The HTTP(S) proxy URL the environment names for ``api_url`` (``HTTP_PROXY`` / ``HTTPS_PROXY`` /
    ``ALL_PROXY``, either case, unless ``NO_PROXY`` names its host: the standard library's reading), else None;
    raises :class:`ConfigError` (exit 5) for a proxy of another scheme (``socks5://``: not supported)."""
    url = httpx.URL(api_url)
    proxies = urllib.request.getproxies()
    proxy = proxies.get(url.scheme) or proxies.get("all")
    if not proxy or urllib.request.proxy_bypass(url.host):
        return None
    scheme = proxy.partition("://")[0].lower()
    if scheme not in ("http", "https"):
        raise ConfigError(f"the environment names a {scheme}:// proxy for {url.scheme}:// (HTTP_PROXY, HTTPS_PROXY, "
                          f"ALL_PROXY): the CLI speaks to an http:// or https:// proxy only; unset it, or add "
                          f"{url.host} to NO_PROXY")
    return proxy


@functools.cache
def verified_tls() -> ssl.SSLContext:
    """The TLS context of this process's ``https://`` API connections, as httpx makes it (its CA bundle, or
    ``SSL_CERT_FILE`` / ``SSL_CERT_DIR``): made on first use, then shared by every client of the process (reading the
    bundle is ~25 ms of CPU each time; a dashboard or an in-process caller makes many clients)."""
    return httpx.create_ssl_context()


def _trusts_nothing() -> ssl.SSLContext:
    """A context for an ``http://`` API and proxy, whose connections never use it: no CA read (~25 ms of CPU, most
    of a short command's), and a TLS handshake it were ever used for would fail verification, never pass unchecked."""
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


class DeadlineTransport(httpx.BaseTransport):
    """An ``httpx`` transport (HTTP/1.1, TLS verified as httpx verifies it) whose requests keep the deadline of
    :func:`answer_deadline`; ``limits`` as ``httpx.Limits``; ``proxy``: an HTTP(S) proxy's URL (:func:`proxy_for`)."""

    def __init__(self, limits: httpx.Limits, proxy: str | None = None, *, tls: bool = True) -> None:
        common: dict[str, Any] = {
            "ssl_context": verified_tls() if tls else _trusts_nothing(), "max_connections": limits.max_connections,
            "max_keepalive_connections": limits.max_keepalive_connections,
            "keepalive_expiry": limits.keepalive_expiry, "network_backend": _Backend()}
        if proxy is None:
            self._pool: httpcore.ConnectionPool | httpcore.HTTPProxy = httpcore.ConnectionPool(**common)
        else:  # an HTTP(S) proxy: plain requests forwarded, https ones tunnelled (CONNECT), as httpx does
            url = httpx.URL(proxy)
            auth = (url.username, url.password) if url.username else None
            self._pool = httpcore.HTTPProxy(proxy_url=str(url.copy_with(username=None, password=None)),
                                            proxy_auth=auth, **common)

    @classmethod
    def for_api(cls, limits: httpx.Limits, api_url: str) -> DeadlineTransport:
        """The transport of an API client of ``api_url``, through the proxy the environment names for it; TLS
        verified only if the API or that proxy is ``https://`` (the client sends nothing anywhere else)."""
        proxy = proxy_for(api_url)
        return cls(limits, proxy, tls=any(httpx.URL(u).scheme == "https" for u in (api_url, proxy) if u))

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        core = httpcore.Request(
            method=request.method,
            url=httpcore.URL(scheme=request.url.raw_scheme, host=request.url.raw_host, port=request.url.port,
                             target=request.url.raw_path),
            headers=request.headers.raw, content=request.stream, extensions=request.extensions)
        with _as_httpx():
            answer = self._pool.handle_request(core)
        return httpx.Response(status_code=answer.status, headers=answer.headers, stream=_Body(answer.stream),
                              extensions=answer.extensions)

    def close(self) -> None:
        self._pool.close()


__all__ = ["DeadlineTransport", "answer_deadline"]
