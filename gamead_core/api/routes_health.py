"""Liveness and readiness probes."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

router = APIRouter()


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")


@router.get("/readyz", summary="Readiness: NATS reachable and the JetStream topology present")
async def readyz(request: Request) -> Response:
    checks = await request.app.state.link.readiness()
    ready = all(v == "ok" for v in checks.values())
    body: dict[str, object] = {"status": "ready" if ready else "unready", "checks": checks}
    if not ready:
        failing = "; ".join(f"{k}: {v}" for k, v in checks.items() if v != "ok")
        body["error"] = {"code": "not_ready", "message": failing, "details": checks}
    return Response(orjson.dumps(body), status_code=200 if ready else 503, media_type="application/json",
                    headers=None if ready else {"Retry-After": "2"})
