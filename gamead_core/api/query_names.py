"""The names a request's query string may use: each once, and only those its route declares (attack42a F2).

Checked by the gate (:class:`~gamead_core.api.middleware.GateMiddleware`) before anything else reads the request,
on every route, the fast lane's submit routes included:

* a name given twice is 400 ``duplicate_query_parameter`` (``?limit=1&limit=500``: which one counts would be a guess);
* a name the route does not declare is 400 ``unknown_query_parameter`` (``GET /ads?statu=completed`` was a 200
  listing every ad: a misspelt filter widened the read to everything); ``details`` name it and list the route's.

A route's names are its FastAPI dependant's query parameters (their aliases, those of its dependencies too), read
once per app from the routes themselves, so a parameter added to a route is accepted with no list to keep. The route
is the one the router would run: the first, in the app's order, whose path and method match; a plain Starlette route
(the submit routes' fast endpoints) takes the names of the documented route behind it, and a route without any
(``/docs``, ``/openapi.json``) is not checked for unknown names, nor are the probes' (:data:`PROBES`): a load
balancer's health check or a Prometheus scrape job may add a parameter of its own (``params:``, a cache-buster), and
a route that takes no filter has nothing a typo could widen (the fresh clone of 99496397: ``/healthz?pad=…`` was
refused 400). A request no route takes is left to its 404/405. Pure but :func:`query_refusal`'s one-time read of the
app's routes.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

from gamead_core.api.errors import ApiError, DuplicateQueryParameter, UnknownQueryParameter
from gamead_core.api.route_table import route_rows
from gamead_core.safe_text import shown_cut

__all__ = ["PROBES", "declared_names", "query_refusal", "parameter_names", "repeated_parameter"]

#: the paths of the probes (liveness, readiness, the Prometheus scrape): names given twice refused, unknown ones not
PROBES = frozenset({"/healthz", "/readyz", "/metrics"})
#: (path regex, methods, the names its query may use, None: not checked) of every route, in the router's order
Table = list[tuple[re.Pattern[str], frozenset[str], frozenset[str] | None]]


def parameter_names(query: bytes) -> list[str]:
    """The names of ``query`` (the raw query string) in order, decoded as Starlette decodes them (``l%69mit`` is
    ``limit``)."""
    return [name for name, _ in parse_qsl(query.decode("latin-1"), keep_blank_values=True)]


def repeated_parameter(query: bytes | list[str]) -> str | None:
    """The first name given more than once in ``query`` (the raw query string, or its :func:`parameter_names`);
    None when each name is given once."""
    seen: set[str] = set()
    for name in parameter_names(query) if isinstance(query, bytes) else query:
        if name in seen:
            return name
        seen.add(name)
    return None


def declared_names(dependant: Any) -> frozenset[str]:
    """The query parameter names (aliases) a FastAPI ``dependant`` takes, its dependencies' included."""
    names: set[str] = set()
    stack = [dependant]
    while stack:
        found = stack.pop()
        names.update(param.alias for param in found.query_params)
        stack.extend(found.dependencies)
    return frozenset(names)


def _table(app: Any) -> Table:
    return [(regex, methods, None if dependant is None else declared_names(dependant))
            for _, regex, methods, dependant in route_rows(app.routes)]


def known_names(app: Any, method: str, path: str) -> frozenset[str] | None:
    """The names the route ``app`` runs for ``method`` ``path`` declares; None when no route with declared
    parameters takes the request (see the module docstring). The table is kept in ``app.state.query_names``."""
    state = getattr(app, "state", None)
    table: Table | None = getattr(state, "query_names", None)
    if table is None:
        table = _table(app)
        if state is not None:
            state.query_names = table
    for regex, methods, names in table:
        if names is not None and method in methods and regex.match(path):
            return names
    return None


def query_refusal(scope: dict[str, Any]) -> ApiError | None:
    """The 400 for the query string of the HTTP request ``scope`` (an ASGI scope, ``scope["app"]`` the app):
    a name given twice, else a name its route does not declare; None when the query may be served."""
    query: bytes = scope["query_string"]
    if not query:
        return None
    names = parameter_names(query)  # parsed once for both checks
    if (repeated := repeated_parameter(names)) is not None:
        return DuplicateQueryParameter.of(repeated)
    if scope["path"] in PROBES:
        return None
    known = known_names(scope.get("app"), scope["method"], scope["path"])
    if known is not None and (unknown := next((n for n in names if n not in known), None)) is not None:
        return UnknownQueryParameter.of(unknown, scope["method"], shown_cut(scope["path"]), known)
    return None
