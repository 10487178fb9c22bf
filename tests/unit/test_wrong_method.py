"""Issue 14 leftovers (C3.1): a known path with a method it does not serve is ``405`` with ``Allow`` and the JSON
error, never a ``404`` — ``GET /ads/batch`` was read as ``GET /ads/{ad_id}`` for the ad ``batch``."""

from __future__ import annotations

import asyncio
import re

import httpx

from gamead_core.api.app import create_app
from fastapi.routing import iter_route_contexts

from gamead_core.api.contract import allowed_methods, shadowed_paths
from gamead_core.config import load_settings

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def test_get_ads_batch_is_405_with_allow_post() -> None:
    app = create_app(load_settings(None), "nats://127.0.0.1:1")  # open mode; no NATS needed for a 405

    async def ask() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://api") as client:
            return await client.get("/ads/batch")

    resp = asyncio.run(ask())
    assert resp.status_code == 405
    assert resp.headers["allow"] == "OPTIONS, POST"
    assert resp.json()["error"]["code"] == "method_not_allowed"
    assert "GET is not allowed on /ads/batch" in resp.json()["error"]["message"]


def test_every_fixed_path_answers_a_wrong_method_with_405_and_its_allow() -> None:
    """Each path of every route (fixed, or with its parameters filled), each method it does not serve: 405 +
    ``Allow`` (the shadowed ones ``/ads/batch``, ``/v1/dlq/replay|purge|import`` included), never 404."""
    app = create_app(load_settings(None, metrics={"enabled": True}), "nats://127.0.0.1:1")
    assert {"/ads/batch", "/v1/dlq/replay", "/v1/dlq/purge", "/v1/dlq/import"} <= set(shadowed_paths(app))
    templates = {str(r.path_format) for r in iter_route_contexts(app.routes) if getattr(r, "methods", None)}
    fixed = sorted(t for t in templates if "{" not in t)
    # and every route with a parameter, at a path it serves (an id in gamead's form; a level)
    sample = sorted(re.sub(r"\{[^}]+\}", lambda m: "3" if m.group(0) == "{level}" else "01m8n9yn14df8p4qjad0cnvqad", t)
                    for t in templates if "{" in t)
    wrong: list[tuple[str, str, int]] = []

    async def ask() -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://api") as client:
            for path in fixed + sample:
                allow = allowed_methods(app, path)
                for method in METHODS:
                    if method in allow:
                        continue
                    resp = await client.request(method, path)
                    ok = (resp.status_code == 405 and resp.headers.get("allow") == ", ".join(allow)
                          and resp.json()["error"]["code"] == "method_not_allowed")
                    if not ok:
                        wrong.append((method, path, resp.status_code))

    asyncio.run(ask())
    assert len(fixed) > 20 and len(sample) >= 6
    assert wrong == []
