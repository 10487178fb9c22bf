"""The submit routes (``POST /ads``, ``POST /ads/batch``) served without the framework's middleware stack.

A ``POST /ads`` through FastAPI passes nine ASGI layers before its endpoint (FastAPI's telemetry and body-limit
wrappers, Starlette's server-error and exception middleware, FastAPI's exit stack, the router's match over
every route, ``request_response``) and five of them are there for features the submit routes do not use. On
this machine they were ~60 of the ~280 µs of CPU a submit cost in-process (py-spy, ``benchmarks/
bench_submit_profile.py``; issue 14.4). The fast lane keeps every layer that *does* something for these
routes, in the same order, and drops the rest:

=====================================  =========================================================================
layer (outermost first)                in the fast lane
=====================================  =========================================================================
server errors                          yes, outermost: an error no handler takes gets the app's 500 handler (if
                                       no answer started) and is re-raised, as ``ServerErrorMiddleware`` does
``HttpMetrics`` (when metrics are on)  yes: counts and times every request, refusals included
``AuditGate``                          no: it passes everything outside ``/v1`` straight through
``GateMiddleware``                     yes: body cap → auth → role → rate limit, unchanged
exception handlers                     yes: the app's own (``install_error_handlers``), looked up by class as
                                       Starlette's ``ExceptionMiddleware`` does
routing                                a dict lookup on (method, path); ``scope["route"]`` is the app's own
                                       ``Route`` (so the metrics label is the route's path)
=====================================  =========================================================================

The endpoints are the very functions the app's routes call. The lane is off when FastAPI's own
OpenTelemetry server spans are on (tracing), when the app has a ``root_path``, and for every other method or
path: those requests take the full stack.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

Handler = Callable[[Request, Exception], Awaitable[Response]]

__all__ = ["FastLane"]


class _Endpoints:
    """The innermost layer: the endpoint of the matched route, with the app's exception handlers around it."""

    def __init__(self, app: Any, routes: dict[str, Route]) -> None:
        self.app = app
        self.routes = routes
        self._handlers: dict[type[BaseException], Handler] | None = None
        self._status_handlers: dict[int, Handler] = {}

    def _handler(self, exc: Exception) -> Handler | None:
        """The handler the app registered for ``exc``'s nearest class (Starlette's lookup by MRO); status-code
        handlers (for an ``HTTPException``) first, as Starlette's ``ExceptionMiddleware`` does."""
        if self._handlers is None:
            handlers = dict(self.app.exception_handlers)
            handlers.pop(Exception, None)  # the 500 handler: the lane's outermost layer (FastLane) runs it
            handlers.pop(500, None)
            self._status_handlers = {k: v for k, v in handlers.items() if isinstance(k, int)}
            self._handlers = {k: v for k, v in handlers.items() if isinstance(k, type)}
        if isinstance(exc, HTTPException) and exc.status_code in self._status_handlers:
            return self._status_handlers[exc.status_code]  # type: ignore[no-any-return]
        for cls in type(exc).__mro__:
            if cls in self._handlers:
                return self._handlers[cls]
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self.routes[scope["path"]]
        scope["route"] = route
        scope["endpoint"] = route.endpoint
        scope["path_params"] = {}
        request = Request(scope, receive)
        try:  # the endpoint returns its response unsent: an error here is always before the answer started
            response = await route.endpoint(request)
        except Exception as exc:
            handler = self._handler(exc)
            if handler is None:
                raise  # to the lane's outermost layer, as to ServerErrorMiddleware
            response = await handler(request, exc)
        await response(scope, receive, send)


class FastLane:
    """Serve ``routes`` (path → the app's ``Route`` for POST) through ``middleware`` (the app's own classes,
    outermost first, each ``(cls, kwargs)``) and the app's exception handlers. ``match(scope)`` says whether a
    request is one of them; the caller sends everything else to the full app."""

    def __init__(self, app: Any, routes: dict[str, Route],
                 middleware: list[tuple[type, dict[str, Any]]]) -> None:
        self.app = app
        self.paths = frozenset(routes)
        stack: ASGIApp = _Endpoints(app, routes)
        for cls, kwargs in reversed(middleware):
            stack = cls(stack, **kwargs)
        self.stack = stack

    def match(self, scope: Scope) -> bool:
        """True for an HTTP ``POST`` to one of the lane's paths, without a ``root_path``."""
        return (scope["type"] == "http" and scope["method"] == "POST" and scope["path"] in self.paths
                and not scope.get("root_path"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the lane; an error no handler took is answered as Starlette's ``ServerErrorMiddleware`` answers it
        (the app's handler for ``Exception``, a JSON 500, if no response has started), then re-raised for the
        server to log."""
        started = False

        async def sender(message: Message) -> None:
            nonlocal started
            started = True
            await send(message)

        try:
            await self.stack(scope, receive, sender)
        except Exception as exc:
            handler = self.app.exception_handlers.get(Exception) or self.app.exception_handlers.get(500)
            if handler is not None and not started:
                response = await handler(Request(scope, receive), exc)
                await response(scope, receive, send)
            raise
