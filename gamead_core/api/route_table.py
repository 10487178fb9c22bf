"""An app's routes as a flat table, read from the routes FastAPI built at import, for the start's look at them.

FastAPI 0.165 keeps an included router as one entry and builds each of its routes again for the inclusion (a
dependant and pydantic fields per route: ``fastapi.routing.iter_route_contexts``) the first time a request is
handled in it, or when asked to list them. ``gamead serve`` listed them all at its start for
:func:`~gamead_core.api.contract.shadowed_paths` (~45 % of a forked start's CPU) and again for the query names'
table. The routers gamead includes add no prefix of their own, no dependencies: each route's path, regex,
methods and dependant are the ones of the route as its router made it, read here without that rebuild.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

#: (path template, path regex, methods, FastAPI dependant or None) of one route
Row = tuple[str, re.Pattern[str], frozenset[str], Any]


def route_rows(routes: Iterable[Any]) -> Iterator[Row]:
    """Each route of ``routes`` (an app's ``app.routes``, in the router's order) that has a path regex and methods,
    an included router's walked in its place (its prefix added), as :data:`Row`. A router included with
    dependencies of its own (its routes' dependants differ from the routers'), or a FastAPI without the
    inclusion's attributes, is read through ``iter_route_contexts``, as the router itself would build them."""
    for route in routes:
        inner, context = getattr(route, "original_router", None), getattr(route, "include_context", None)
        if inner is not None and context is not None and not context.dependencies:
            for path, regex, methods, dependant in route_rows(inner.routes):
                if context.prefix:
                    from starlette.routing import compile_path

                    path = context.prefix + path
                    regex = compile_path(path)[0]
                yield path, regex, methods, dependant
            continue
        for one in _built(route) if inner is not None else (route,):
            regex, methods = getattr(one, "path_regex", None), getattr(one, "methods", None)
            if regex is not None and methods:
                yield str(getattr(one, "path_format", "")), regex, frozenset(methods), getattr(one, "dependant", None)


def _built(route: Any) -> Iterator[Any]:
    from fastapi import routing

    yield from routing.iter_route_contexts([route])


__all__ = ["Row", "route_rows"]
