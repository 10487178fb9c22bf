"""The submit routes' fast lane (gamead_core.api.fastlane) answers exactly as the full FastAPI stack does: the
same status, error JSON, headers and metrics, for every refusal a client can provoke, driven in process (no
lifespan, so no NATS: a well-formed ad meets the app's 500 handler)."""

from __future__ import annotations

import asyncio
import json

import httpx
from prometheus_client.parser import text_string_to_metric_families

from gamead_core.api.app import create_app
from gamead_core.config import GameadSettings
from gamead_core.telemetry.metrics import set_recording
from tests.support import SAMPLE_AD

TOKENS = [{"name": "viewer1", "token": "v" * 32, "role": "viewer"},
          {"name": "ci", "token": "s" * 32, "role": "submitter"}]

CASES: list[tuple[str, str, bytes, dict[str, str]]] = [
    ("not JSON", "/ads", b"{nope", {}),
    ("not an object", "/ads", b"[1, 2]", {}),
    ("invalid ad", "/ads", json.dumps({**SAMPLE_AD, "priority": 9}).encode(), {}),
    ("unknown field", "/ads", json.dumps({**SAMPLE_AD, "extra": 1}).encode(), {}),
    ("key too long", "/ads", json.dumps(SAMPLE_AD).encode(), {"Idempotency-Key": "k" * 201}),  # 400 invalid_idempotency_key
    ("no token", "/ads", json.dumps(SAMPLE_AD).encode(), {"x-no-token": "1"}),
    ("wrong role", "/ads", json.dumps(SAMPLE_AD).encode(), {"Authorization": "Bearer " + "v" * 32}),
    ("body too large", "/ads", b"x" * 70_000, {}),
    ("no NATS link", "/ads", json.dumps(SAMPLE_AD).encode(), {}),
    ("batch not JSON", "/ads/batch", b"{nope", {}),
    ("batch without ads", "/ads/batch", b'{"ads": []}', {}),
    ("batch too large", "/ads/batch", json.dumps({"ads": [SAMPLE_AD] * 501}).encode(), {}),
    ("batch without a NATS link", "/ads/batch", json.dumps({"ads": [SAMPLE_AD]}).encode(), {}),
]


async def posts_counted(client: httpx.AsyncClient) -> dict[tuple[tuple[str, str], ...], float]:
    """``gamead_http_requests_total`` of POST requests, by labels (the registry is the process's: a delta)."""
    text = (await client.get("/metrics", headers={"Authorization": "Bearer " + "v" * 32})).text
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "gamead_http_requests_total" and sample.labels.get("method") == "POST":
                out[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def answers(lane: bool) -> list[tuple[int, dict[str, str], object]]:
    settings = GameadSettings(auth={"tokens": TOKENS}, ratelimit={"enabled": True})
    app = create_app(settings, "nats://127.0.0.1:1")
    assert app.fast_lane is not None
    if not lane:
        app.fast_lane = None

    async def go() -> list[tuple[int, dict[str, str], object]]:
        transport = httpx.ASGITransport(app, raise_app_exceptions=False)
        out = []
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            before = await posts_counted(client)
            for _, path, body, headers in CASES:
                sent = dict(headers)
                if "x-no-token" not in sent and "Authorization" not in sent:
                    sent["Authorization"] = "Bearer " + "s" * 32
                resp = await client.post(path, content=body, headers=sent)
                kept = {k: v for k, v in resp.headers.items() if k not in ("date", "x-ratelimit-remaining",
                                                                              "x-ratelimit-reset")}
                out.append((resp.status_code, kept, resp.json()))
            after = await posts_counted(client)
        out.append((0, {}, {k: v - before.get(k, 0.0) for k, v in after.items()}))  # this run's counts
        return out

    try:
        return asyncio.run(go())
    finally:
        set_recording(True)


def test_the_fast_lane_answers_as_the_full_stack() -> None:
    full, fast = answers(lane=False), answers(lane=True)
    for (name, *_), want, got in zip(CASES, full, fast, strict=False):
        assert got == want, name
    assert fast[-1] == full[-1], "the HTTP metrics count the lane's requests as the full stack's"
    assert sum(fast[-1][2].values()) == len(CASES)  # type: ignore[union-attr]
    statuses = [status for status, _, _ in fast[:-1]]
    assert statuses == [400, 400, 422, 422, 400, 401, 403, 413, 500, 400, 422, 422, 500]
    assert all(body["error"]["code"] for _, _, body in fast[:-1])  # type: ignore[index]


def test_the_lane_takes_only_a_post_to_its_paths_without_a_root_path() -> None:
    app = create_app(GameadSettings(), "nats://127.0.0.1:1")
    assert app.fast_lane is not None and app.fast_lane.match({"type": "http", "method": "POST", "path": "/ads"})
    assert not app.fast_lane.match({"type": "http", "method": "POST", "path": "/ads", "root_path": "/api"})
    assert not app.fast_lane.match({"type": "http", "method": "GET", "path": "/ads"})
    assert not app.fast_lane.match({"type": "http", "method": "POST", "path": "/ads/"})
