"""Liveness and readiness probes."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

router = APIRouter()


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")


#: checks that report but never make the node unready (Redis down = degraded, still serving)
_SOFT_CHECKS = frozenset({"redis"})


@router.get("/readyz", summary="Readiness: NATS reachable and the JetStream topology present")
async def readyz(request: Request) -> Response:
    checks = await request.app.state.link.readiness()
    redis = request.app.state.redis
    checks["redis"] = "disabled" if redis is None else redis.status()
    ready = all(v == "ok" for k, v in checks.items() if k not in _SOFT_CHECKS)
    degraded = ready and checks["redis"].startswith("degraded")
    body: dict[str, object] = {"status": "degraded" if degraded else "ready" if ready else "unready",
                               "checks": checks}
    if not ready:
        failing = "; ".join(f"{k}: {v}" for k, v in checks.items() if v != "ok" and k not in _SOFT_CHECKS)
        body["error"] = {"code": "not_ready", "message": failing, "details": checks}
    return Response(orjson.dumps(body), status_code=200 if ready else 503, media_type="application/json",
                    headers=None if ready else {"Retry-After": "2"})
