"""Is a refused method one the path lacks? Then the app answers 405 with ``Allow``, not the gate 403."""

from __future__ import annotations

from starlette.routing import Match
from starlette.types import Scope

from gamead_core.api.auth import may_use_path


def method_not_routed(scope: Scope, role: str | None, klass: str) -> bool:
    """True when the app has routes for ``scope``'s path but none for its method, and ``role`` may call the path
    with one of the methods it has (:func:`~gamead_core.api.auth.may_use_path`): the request goes on to the
    app, whose answer is 405 with ``Allow``. Asked only on a refusal (never on the hot path); each route is asked
    with :meth:`~starlette.routing.BaseRoute.matches`, so included routers count too."""
    routes = getattr(getattr(scope.get("app"), "router", None), "routes", None) or []

    def routed(method: str) -> bool:
        probe = {**scope, "method": method}
        return any(route.matches(probe)[0] == Match.FULL for route in routes)

    if routed(scope["method"]):
        return False  # the method is routed: the role decides (403)
    methods = frozenset(m for m in _METHODS if routed(m))
    return bool(methods) and may_use_path(role, methods, klass)  # type: ignore[arg-type]


#: the methods a route may have (RFC 9110 §9): what :func:`method_not_routed` asks the app about
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
