"""``GET /metrics``: Prometheus text of this API process (gamead_core.telemetry).

Access (gamead_core.api.auth): ``/metrics`` is route class ``other``, whose reads every role may make
(submitter, viewer, operator); with auth off (``gamead up`` on loopback, or ``auth.enabled: false``) it is
open like every route. A Prometheus scraping an API with tokens sends one (``authorization`` in a
``ServiceMonitor``/``PodMonitor`` endpoint; a viewer token is enough).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.responses import Response

from gamead_core.telemetry.collectors import ApiCollector
from gamead_core.telemetry.metrics import API_REGISTRY

router = APIRouter()


def _app_registry(request: Request) -> CollectorRegistry:
    registry = getattr(request.app.state, "metrics_registry", None)
    if registry is None:  # one per app: several apps in one process (tests) never share read-outs
        registry = CollectorRegistry(auto_describe=False)
        registry.register(ApiCollector(request.app))
        request.app.state.metrics_registry = registry
    return registry


@router.get("/metrics", summary="Prometheus metrics of this API process (text exposition format)",
            response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
async def metrics(request: Request) -> Response:
    if (sampler := getattr(request.app.state, "stats_sampler", None)) is not None:
        await sampler.current()  # gamead_workers{state}: judged on a reading renewed after this process stood still
    body = generate_latest(API_REGISTRY) + generate_latest(_app_registry(request))
    return Response(body, media_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})
