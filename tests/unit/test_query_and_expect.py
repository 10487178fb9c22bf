"""The gate refuses what it cannot read one way (driven in process, no NATS): a query parameter given twice is
400 ``duplicate_query_parameter`` on every route (``?limit=1&limit=500`` was a 200, which one counted a guess),
a name the route does not declare is 400 ``unknown_query_parameter`` on every route (attack42a F2: ``GET
/ads?statu=completed`` was a 200 listing everything), and an ``Expect`` other than ``100-continue`` is 417
``expectation_failed`` (RFC 9110 §10.1.1)."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi.routing import iter_route_contexts

from gamead_core.api.app import create_app
from gamead_core.api.query_names import PROBES, repeated_parameter
from gamead_core.config import GameadSettings


def ask(*requests: tuple[str, str, dict[str, str]]) -> list[httpx.Response]:
    app = create_app(GameadSettings(ratelimit={"enabled": False}), "nats://127.0.0.1:1")

    async def go() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app, raise_app_exceptions=False)  # past the gate a route needs NATS: a 500
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            return [await client.request(method, path, headers=headers) for method, path, headers in requests]

    return asyncio.run(go())


def test_a_repeated_query_parameter_is_refused_on_every_route_naming_it() -> None:
    app = create_app(GameadSettings(), "nats://127.0.0.1:1")
    routes = [(min(r.methods - {"HEAD"}), str(r.path_format).replace("{ad_id}", "01abc").replace(
        "{level}", "1").replace("{job_id}", "01abc").replace("{ref}", "x"))
        for r in iter_route_contexts(app.routes) if getattr(r, "methods", None)]
    assert len(routes) > 20
    answers = ask(*((m, f"{p}?limit=1&limit=500", {}) for m, p in routes), ("GET", "/nowhere?a=1&a=2", {}),
                  ("HEAD", "/healthz?a&a", {}))
    for (method, path), resp in zip([*routes, ("GET", "/nowhere"), ("HEAD", "/healthz")], answers, strict=True):
        assert resp.status_code == 400, (method, path, resp.status_code)
        if method != "HEAD":
            error = resp.json()["error"]
            assert error["code"] == "duplicate_query_parameter" and error["details"]["parameter"] in ("limit", "a")
    once = ask(("GET", "/v1/audit?limit=1&actor=x", {}))[0]
    assert once.status_code != 400


def _routes(app: object) -> list[tuple[str, str, frozenset[str]]]:
    """(method, a path it serves, its declared query names) of every documented route of ``app``."""
    from gamead_core.api.query_names import declared_names

    routes = [r for r in iter_route_contexts(app.routes) if getattr(r, "dependant", None) is not None]  # type: ignore
    return [(min(r.methods - {"HEAD"}), str(r.path_format).replace("{ad_id}", "01abc").replace("{level}", "1").replace(
        "{job_id}", "01abc").replace("{ref}", "x"), declared_names(r.dependant)) for r in routes]


def test_a_parameter_the_route_does_not_declare_is_refused_on_every_route_and_its_own_are_not() -> None:
    """Without the fix (the gate's ``query_refusal`` back to the repeat check alone): none of the 26 routes named
    ``?statu=1``, each answered as if it were not there (the first, ``POST /ads``, read its body: 400
    ``invalid_json``); with it, each is 400 ``unknown_query_parameter`` listing its own names."""
    routes = _routes(create_app(GameadSettings(), "nats://127.0.0.1:1"))
    assert len(routes) > 20 and any(names for _, _, names in routes)
    routes = [(m, p, names) for m, p, names in routes if p not in PROBES]  # their scrapers' own names pass
    unknown = ask(*((m, f"{p}?statu=1", {}) for m, p, _ in routes))
    own = ask(*((m, p + "?" + "&".join(f"{n}=1" for n in sorted(names)), {}) for m, p, names in routes if names))
    for (method, path, names), resp in zip(routes, unknown, strict=True):
        assert resp.status_code == 400, (method, path, resp.status_code)
        error = resp.json()["error"]
        assert error["code"] == "unknown_query_parameter" and error["details"] == {
            "parameter": "statu", "known": sorted(names)}, (method, path, error)
    for resp in own:  # its own names are never called unknown (past the gate: 422 for a value, 500/503 no NATS)
        assert resp.status_code != 400, resp.text[:300]
    probes = ask(*(("GET", f"{p}?pad=1", {}) for p in sorted(PROBES)))  # a load balancer's or scrape job's own
    assert all(r.status_code != 400 for r in probes), [r.text[:200] for r in probes]  # 99496397: 400
    submit = ask(("POST", "/ads?priorty=1", {}), ("POST", "/ads/batch?x=1", {}))  # the fast lane too
    assert [r.json()["error"]["code"] for r in submit] == ["unknown_query_parameter"] * 2


@pytest.mark.parametrize(("query", "repeated"), [
    (b"limit=1&limit=500", "limit"), (b"l%69mit=1&limit=2", "limit"), (b"a&a=", "a"), (b"a=1&b=1&c=1", None),
    (b"a+b=1&a%20b=2", "a b"), (b"", None)])
def test_repeated_names_are_read_as_starlette_reads_them(query: bytes, repeated: str | None) -> None:
    assert repeated_parameter(query) == repeated


def test_an_expect_other_than_100_continue_is_417() -> None:
    bad, upper, fine = ask(("POST", "/ads", {"Expect": "something-else"}), ("GET", "/healthz", {"Expect": "x"}),
                           ("GET", "/healthz", {"Expect": "100-Continue"}))
    assert bad.status_code == upper.status_code == 417
    assert bad.json()["error"]["code"] == "expectation_failed"
    assert fine.status_code == 200
