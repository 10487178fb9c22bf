"""A request path echoed in an error message is a client's text: escaped as every view shows stored text
(:func:`gamead_core.safe_text.shown`) and cut at 80 characters (attack55). Before, ``PUT /v1/jobs/%1b%5b31mRED``
answered ``PUT is not allowed on /v1/jobs/<ESC>[31mRED`` and ``GET /ads/%1b%5b2J%07?bogus=1`` ``… not one GET
/ads/<ESC>[2J<BEL> takes``: a client printing ``error.message`` (``jq -r``) had its terminal cleared, and an 8 KiB
path came back whole, where ``GET /ads/{id}`` says ``no ad with id '\\x1b[2J'`` cut at 40."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from gamead_core.api.app import create_app
from gamead_core.config import load_settings


def _answer(method: str, target: str) -> httpx.Response:
    app = create_app(load_settings(None), "nats://127.0.0.1:1")  # open mode; neither refusal needs NATS

    async def ask() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://api") as client:
            return await client.request(method, target)

    return asyncio.run(ask())


@pytest.mark.parametrize(("method", "target", "code"), [
    ("PUT", "/v1/jobs/%1b%5b31mRED%07", "method_not_allowed"),
    ("GET", "/ads/%1b%5b31mRED%07?bogus=1", "unknown_query_parameter"),
])
def test_a_path_with_controls_is_echoed_escaped(method: str, target: str, code: str) -> None:
    error = _answer(method, target).json()["error"]
    assert error["code"] == code
    assert "\x1b" not in error["message"] and "\x07" not in error["message"], error["message"]
    assert "\\u001b[31mRED\\u0007" in error["message"], error["message"]


@pytest.mark.parametrize(("method", "query"), [("PUT", ""), ("GET", "?bogus=1")])
def test_a_long_path_is_echoed_cut(method: str, query: str) -> None:
    path = "/v1/jobs/" + "x" * 6000
    error = _answer(method, path + query).json()["error"]
    assert path[:80] + "…" in error["message"] and len(error["message"]) < 400, len(error["message"])
