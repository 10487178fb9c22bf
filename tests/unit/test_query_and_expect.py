"""The gate refuses what it cannot read one way (driven in process, no NATS): a query parameter given twice is
400 ``duplicate_query_parameter`` on every route (``?limit=1&limit=500`` was a 200, which one counted a guess),
and an ``Expect`` other than ``100-continue`` is 417 ``expectation_failed`` (RFC 9110 §10.1.1)."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi.routing import iter_route_contexts

from gamead_core.api.app import create_app
from gamead_core.api.middleware import repeated_parameter
from gamead_core.config import GameadSettings


def ask(*requests: tuple[str, str, dict[str, str]]) -> list[httpx.Response]:
    app = create_app(GameadSettings(ratelimit={"enabled": False}), "nats://127.0.0.1:1")

    async def go() -> list[httpx.Response]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://api") as client:
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
    once = ask(("GET", "/healthz?limit=1&other=2", {}))[0]
    assert once.status_code == 200


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
