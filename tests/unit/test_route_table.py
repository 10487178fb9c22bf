"""start58: ``gamead serve``'s start reads its routes as FastAPI made them at import, never builds them again.

FastAPI (0.165) builds an included router's routes again for the inclusion (a dependant and pydantic fields each)
when a request is first handled in it, or when asked to list them (``iter_route_contexts``). The start listed them
all (the 405 table, the query names'): ~45 % of a forked ``serve``'s CPU to ready (0.11 CPU-s, bench_start.py).
"""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi import routing
from fastapi.routing import iter_route_contexts

from gamead_core.api.app import create_app
from gamead_core.api.query_names import declared_names
from gamead_core.api.route_table import route_rows
from gamead_core.config import load_settings


def _counting_builds(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every route FastAPI builds again for an inclusion from now on (its path), in order."""
    built: list[str] = []
    original = routing._EffectiveRouteContext.from_api_route.__func__  # type: ignore[attr-defined]

    def counted(cls: type, *, original_route: routing.APIRoute, include_context: object) -> object:
        built.append(original_route.path)
        return original(cls, original_route=original_route, include_context=include_context)

    monkeypatch.setattr(routing._EffectiveRouteContext, "from_api_route", classmethod(counted))
    return built


def test_the_app_is_built_and_answers_a_probe_without_building_every_route_again(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: create_app built all 28 API routes again (the 405 table); a probe then, and a first query string
    the query names' table. Now: none at build; a probe builds only the routers the request went through."""
    built = _counting_builds(monkeypatch)
    app = create_app(load_settings(None), "nats://127.0.0.1:1")
    assert built == []

    async def ask() -> list[int]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://api") as client:
            return [(await client.get("/healthz?x=1")).status_code, (await client.get("/ads/batch")).status_code]

    assert asyncio.run(ask())[1] == 405  # the 405 table and the query names' table read, /healthz served
    assert not any(path.startswith("/v1/") for path in built), built


def test_the_table_is_the_one_fastapi_would_build() -> None:
    """Path, regex, methods and query names of every route, in the router's order, as ``iter_route_contexts``
    lists them (the metrics route and every router included)."""
    app = create_app(load_settings(None, metrics={"enabled": True}), "nats://127.0.0.1:1")
    theirs = [(str(r.path_format), r.path_regex.pattern, frozenset(r.methods),
               None if getattr(r, "dependant", None) is None else declared_names(r.dependant))
              for r in iter_route_contexts(app.routes) if getattr(r, "methods", None) and r.path_regex is not None]
    ours = [(path, regex.pattern, methods, None if dependant is None else declared_names(dependant))
            for path, regex, methods, dependant in route_rows(app.routes)]
    assert len(ours) > 30
    assert ours == theirs


def test_a_router_included_with_a_prefix_has_it_in_its_rows() -> None:
    from fastapi import APIRouter, FastAPI

    inner = APIRouter()

    @inner.get("/x/{item}")
    def x(item: str, q: int = 0) -> str:
        return item

    app = FastAPI()
    app.include_router(inner, prefix="/v9")
    [(path, regex, methods, dependant)] = [row for row in route_rows(app.routes) if "item" in row[0]]
    assert (path, methods, declared_names(dependant)) == ("/v9/x/{item}", frozenset({"GET"}), frozenset({"q"}))
    assert regex.match("/v9/x/1") and not regex.match("/x/1")
