"""A bound on the size of the Kubernetes API server's answers, read by the official client.

Why: the client reads an answer whole, then decodes its JSON and builds its model, and neither has a size limit.
A Scale object is under 1 KiB and a ``Status`` error a few KiB; a broken or hostile API server (or a proxy in
front of it) answering 400 MB took the API node to ~2 GB of memory, and decoding it in the client's thread held
the GIL for seconds: ``/healthz`` took 3.8 s, a ``POST /ads`` 6.3 s, and the autoscaler's lease lapsed five times
(attack30b F2). So :class:`CappedAnswers` wraps the client's urllib3 pool: each answer is read (decoded, if the
server compressed it) up to :data:`MAX_ANSWER_BYTES`; one longer is not read further, its connection is closed,
and :class:`AnswerTooLarge` is raised (the scaler's error boundary makes it a
:class:`~gamead_core.errors.ScalerUnavailable` that says so).

It also knows which connection each thread's request is on, so that a call given up on (an answer a byte at a time:
:mod:`gamead_core.scaling.call_thread`) can be cut: :meth:`CappedAnswers.abort` shuts that connection's socket
down, its read fails at once and the thread ends (a thread left reading kept the process from exiting, and a
daemon thread waking during the interpreter's exit aborted it: attack30b F5).
"""

from __future__ import annotations

import contextlib
import io
import socket
import threading
from typing import Any

import urllib3

#: longest answer read from the Kubernetes API (bytes, after decoding): 256 times a Scale object
MAX_ANSWER_BYTES = 256 * 1024


class AnswerTooLarge(urllib3.exceptions.HTTPError):
    """An answer (HTTP ``status``) longer than ``limit`` bytes: not read past the limit, its connection closed."""

    def __init__(self, status: int, limit: int) -> None:
        super().__init__(f"HTTP {status} with an answer longer than {limit} bytes (not read past that)")
        self.status, self.limit = status, limit


#: the connection each thread's request is on now (thread ident → connection), for :meth:`CappedAnswers.abort`
_ON: dict[int, Any] = {}


class _Tracked:
    """A urllib3 connection that notes itself as its thread's while it sends a request and reads its answer."""

    def request(self, *args: Any, **kwargs: Any) -> Any:
        _ON[threading.get_ident()] = self
        return super().request(*args, **kwargs)  # type: ignore[misc]


class _HTTPConnection(_Tracked, urllib3.connection.HTTPConnection):
    pass


class _HTTPSConnection(_Tracked, urllib3.connection.HTTPSConnection):
    pass


class _HTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


class CappedAnswers:
    """A urllib3 pool manager whose answers are at most ``limit`` bytes, and whose requests can be cut from another
    thread (module docstring). Every other attribute is the wrapped ``pool``'s (``clear()`` at the client's close).
    """

    def __init__(self, pool: Any, limit: int = MAX_ANSWER_BYTES) -> None:
        self._pool, self._limit = pool, limit
        pool.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}  # before its first pool is made

    @staticmethod
    def abort(thread: int | None) -> None:
        """Cut the request the thread ``thread`` (an ident) is making, if any: its socket is shut down, so a read
        waiting for the answer fails at once. From any thread; never raises."""
        conn = _ON.get(thread) if thread is not None else None
        sock = getattr(conn, "sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pool, name)

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        """The wrapped pool's ``request``, its answer read here (at most ``limit`` bytes) and handed back as an
        unread ``urllib3.HTTPResponse`` of those bytes. Raises :class:`AnswerTooLarge`, or what urllib3 raises."""
        kwargs["preload_content"] = False  # what the client asks for (kubernetes 37): read here, bounded
        try:
            answer = self._pool.request(method, url, *args, **kwargs)
            try:
                body = answer.read(self._limit + 1, decode_content=True)
                if len(body) > self._limit:
                    raise AnswerTooLarge(answer.status, self._limit)
            except BaseException:
                answer.close()  # the rest unread: the connection cannot serve another request
                raise
        finally:
            _ON.pop(threading.get_ident(), None)
        answer.release_conn()
        headers = urllib3.HTTPHeaderDict(answer.headers)  # the body is decoded and whole: nothing left to decode
        for name in ("Content-Encoding", "Content-Length", "Transfer-Encoding"):
            headers.discard(name)
        return urllib3.HTTPResponse(body=io.BytesIO(body), headers=headers, status=answer.status,
                                    reason=answer.reason, version=answer.version, request_method=method,
                                    request_url=url, preload_content=False, decode_content=False)
