"""``gamead_http_requests_total`` and ``gamead_http_request_duration_seconds``: a pure ASGI middleware.

The ``route`` label is the route *template* (``/ads/{ad_id}``), never the raw path: the router puts the
matched endpoint in the scope, and the template is looked up from it. A request no route matched (a 404, or
one the gate refused before routing: 401, 403, 429, 413) is labelled ``route="unmatched"``, so the label set
stays bounded whatever clients send.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gamead_core.telemetry.conn_metrics import UNMATCHED
from gamead_core.telemetry.metrics import HTTP_DURATION, HTTP_REQUESTS
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class HttpMetrics:
    """Counts and times every HTTP request (outermost middleware: it sees the gate's refusals too)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._templates: dict[int, str] | None = None
        #: labelled children, made once per (route, method, status): bounded by the routes, 7 methods and
        #: the statuses the app answers; ``labels()`` costs several times what ``inc()`` does
        self._counters: dict[tuple[str, str, int], Any] = {}
        self._durations: dict[str, Any] = {}

    def _template(self, scope: Scope) -> str:
        route = scope.get("route")
        path = getattr(route, "path", None) if route is not None else None
        if isinstance(path, str):
            return path
        endpoint = scope.get("endpoint")
        if endpoint is None:
            return UNMATCHED
        if self._templates is None:
            self._templates = _templates(scope.get("app"))
        return self._templates.get(id(endpoint), UNMATCHED)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sender(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sender)
        finally:
            route = self._template(scope)
            method = scope["method"] if scope["method"] in _METHODS else "other"
            key = (route, method, status)
            counter = self._counters.get(key)
            if counter is None:
                counter = self._counters[key] = HTTP_REQUESTS.labels(route, method, str(status))
            duration = self._durations.get(route)
            if duration is None:
                duration = self._durations[route] = HTTP_DURATION.labels(route)
            counter.inc()
            duration.observe(time.perf_counter() - started)


def _templates(app: Any) -> dict[int, str]:
    """endpoint id → path template, from the app's routes (the plain ``Route("/ads")`` included)."""
    out: dict[int, str] = {}
    for route in getattr(getattr(app, "router", None), "routes", ()):
        endpoint, path = getattr(route, "endpoint", None), getattr(route, "path", None)
        if endpoint is not None and isinstance(path, str):
            out.setdefault(id(endpoint), path)
    return out


__all__ = ["HttpMetrics", "UNMATCHED"]
