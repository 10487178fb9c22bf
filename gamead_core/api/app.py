"""The FastAPI application factory of ``gamead serve``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from gamead_core.api import (
    contract,
    routes_ads,
    routes_audit,
    routes_batch,
    routes_dlq,
    routes_doctor,
    routes_health,
    routes_jobs,
    routes_levels,
    routes_metrics,
    routes_scale,
    routes_v1,
    routes_workers,
)
from gamead_core.api.audit_gate import AuditGate
from gamead_core.api.auth import WEAK_BELOW_CHARS, WEAK_BELOW_DISTINCT, auth_mode, weak_tokens
from gamead_core.api.cache import AdCache
from gamead_core.api.errors import install_error_handlers
from gamead_core.api.fastlane import FastLane
from gamead_core.api.middleware import GateMiddleware
from gamead_core.api.ratelimit import RateLimiter, deployment_scope
from gamead_core.api.scan_gate import ScanGate
from gamead_core.api.shared_reads import SharedReads
from gamead_core.api.state import QueueLink
from gamead_core.audit import AuditLog
from gamead_core.config import GameadSettings
from gamead_core.errors import GameadError
from gamead_core.queue.refusal import serve_until_refused
from gamead_core.redis_link import RedisLink
from gamead_core.stop_bound import within
from gamead_core.telemetry.http import HttpMetrics
from gamead_core.telemetry.metrics import set_recording
from gamead_core.telemetry.tracing import setup_tracing, shutdown_tracing
from gamead_core.worker.orphans import reach_warning

log = logging.getLogger(__name__)


class GameadApi(FastAPI):
    """The API app: FastAPI, with the submit routes served by a :class:`FastLane` when one is set (the same
    middleware, handlers and endpoints, without the framework layers these routes do not use)."""

    fast_lane: FastLane | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        lane = self.fast_lane
        if lane is not None and lane.match(scope):
            scope["app"] = self
            await lane(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def create_app(settings: GameadSettings, nats_url: str) -> FastAPI:
    """Build the API. NATS is connected in the lifespan; the app serves (503s) even before it is. A process that
    serves it (``gamead serve``, an embedder, a benchmark) calls :func:`gamead_core.collector.tune` once it is
    built: the app does not tune the process's garbage collector itself."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        mode = auth_mode(settings)  # one line: the mode in force and tokens per role, never a token
        log.info("auth %s: %s", mode["auth_mode"], mode["auth_reason"], extra=mode)
        if weak := weak_tokens(settings.auth):  # one line naming them, never a secret (review28 A1)
            log.warning("auth.tokens: the token of %s is short or repetitive (under %d characters, or under %d "
                        "different ones): a valid token is always answered, so only its length and randomness "
                        "bound guessing; use a long random secret (openssl rand -hex 32)",
                        ", ".join(map(repr, weak)), WEAK_BELOW_CHARS, WEAK_BELOW_DISTINCT, extra={"weak_tokens": weak})
        if (short := reach_warning(settings)) is not None:  # what a stop leaves would be the doctor's alone
            log.warning("configuration: %s", short)
        def refused(exc: GameadError) -> None:  # the link's start refused (queue.partitions…): exit 5, as serve's
            if getattr(app.state, "refused", None) is None:  # pre-check would have; never retried into a change
                app.state.refused = exc
            if (stop := getattr(app.state, "stop_serving", None)) is not None:
                stop()

        link = QueueLink(settings, nats_url, on_refused=refused)
        app.state.link = link
        # the trail of operator actions, read on the reads connection (gamead_core.api.read_conn)
        app.state.audit = AuditLog(lambda: link.js, settings.audit, reads=lambda: link.reads.js)
        redis = RedisLink.from_settings(settings.redis)  # None = one-machine mode: in-process cache/limits
        app.state.redis = redis
        # a cached record never outlives the stored one (completed records expire: records.completed_max_age)
        app.state.cache = AdCache(redis, min(settings.cache.ttl, settings.records.completed_max_age))
        app.state.limiter = RateLimiter(redis, scope=lambda: deployment_scope(link))  # per deployment (leftout60)
        if redis is not None:
            await redis.start()
        await link.start()
        # NATS refusing our credentials after a connection was made: exit 5 after nats.refused_exit_after
        refusals = asyncio.create_task(serve_until_refused(lambda: link.nc, settings.nats, nats_url, app.state))
        stop_observers = await routes_v1.start_observers(app)  # stats sampler + this node's heartbeat
        stop_autoscaler = await routes_scale.start_autoscaler(app)  # never raises; runs in the background
        try:
            yield
        finally:
            refusals.cancel()
            # each step with its own deadline (fix35d, gamead_core.stop_bound.within): one that hangs on a stalled
            # NATS or Valkey is cut and the next still runs, within the process's bound (API_BOUND)
            step = 2 * settings.nats.request_timeout  # a write or two; the autoscaler waits 5 s, the last round 3 s
            await within(stop_autoscaler(), 5 + step, "the autoscaler's stop")  # releases the lease if held here
            await within(link.settle_writes(), 3 + step, "the last settle round")  # ambiguous submits, before the beat
            await within(stop_observers(), step, "the observers' stop")  # removes this node's registry entry
            await within(link.stop(), 8.0, "the NATS link's stop")  # its drain (5 s) and close (2 s)
            if redis is not None:
                await within(redis.close(), step, "the Valkey link's close")
            shutdown_tracing()  # flush the last spans (nothing when tracing is off)

    tracing = setup_tracing("api")
    app = GameadApi(
        title="gamead",
        version="0.1.0",
        summary="Submit game ads, queue them by priority, read their analysis.",
        lifespan=lifespan,
        # /ads/ is not /ads: a 404 in the error contract, not a bare 307 to a Location built from the client's
        # Host header (and, on /v1, an audited "other" action)
        redirect_slashes=False,
        # FastAPI's own OpenTelemetry server spans only when OTEL_* asks for traces (gamead_core.telemetry.tracing):
        # no per-request lookups on the hot path otherwise (~5% of API CPU when on and unused).
        telemetry={"tracing": tracing, "metrics": False, "logs": False, "operation_spans": False},
    )
    app.state.settings = settings
    app.state.scans = ScanGate(settings.api.list_scans)
    #: reads of the DLQ (a page, a dry run, a purge's count): one ordered consumer each on nats-server, 200 at once
    #: took it from 33 to 392 MB (fix35b); the jobs' own scans are bounded by jobs.max_running
    app.state.dlq_scans = ScanGate(settings.dlq.scans, "DLQ scan", "dlq.scans")
    #: watchers' DLQ reads (gamead top: Cache-Control max-age, or a viewer's token) apart, so they never take an
    #: operator's capacity, and identical ones shared (attack37 F1: 24 dashboards got an operator's dry run refused)
    app.state.dlq_watch_scans = ScanGate(settings.dlq.watch_scans, "watchers' DLQ scan", "dlq.watch_scans")
    app.state.dlq_reads = SharedReads("dlq", settings.dlq.watch_max_age)
    app.state.audit_reads = SharedReads("audit", settings.dlq.watch_max_age)
    #: audit pages, as the DLQ's (attack39a F1: 20 viewers' reads at once, none bounded, took an API to 729 MB)
    app.state.audit_scans = ScanGate(settings.audit.scans, "audit scan", "audit.scans")
    app.state.audit_watch_scans = ScanGate(settings.audit.watch_scans, "watchers' audit scan", "audit.watch_scans")
    install_error_handlers(app)
    app.add_exception_handler(ClientDisconnect, _client_gone)
    app.add_middleware(GateMiddleware, settings=settings)  # body cap → auth → rate limit
    app.add_middleware(AuditGate, settings=settings)  # outside the gate: /v1 writes, refused ones too
    set_recording(settings.metrics.enabled)
    if settings.metrics.enabled:
        app.add_middleware(HttpMetrics)  # outermost: counts the gate's refusals too (gamead_http_requests_total)
    app.include_router(routes_ads.router, tags=["ads"])
    # The hot path as a plain Starlette route, matched before the documented FastAPI one.
    submit_route = Route("/ads", routes_ads.submit, methods=["POST"])
    app.router.routes.insert(0, submit_route)
    app.include_router(routes_batch.router, tags=["ads"])
    batch_route = Route("/ads/batch", routes_batch.submit_batch, methods=["POST"])
    app.router.routes.insert(0, batch_route)
    app.include_router(routes_health.router, tags=["health"])
    app.include_router(routes_dlq.router)
    app.include_router(routes_jobs.router)  # its lifespan runs this node's operator jobs
    app.include_router(routes_doctor.router)  # after jobs: its lifespan gives them the doctor's repairs
    app.include_router(routes_v1.router, tags=["operations"])
    app.include_router(routes_scale.router)
    app.include_router(routes_workers.router)  # quiet / resume one worker
    app.include_router(routes_audit.router)
    app.include_router(routes_levels.router)  # the dashboard's drill-down: a level's oldest ads
    if settings.metrics.enabled:
        app.include_router(routes_metrics.router, tags=["operations"])  # GET /metrics (Prometheus)
    contract.install(app, settings)  # openapi.json: every status, one error schema; Allow on OPTIONS/405
    if not tracing and not app.root_path:  # FastAPI's server spans need its full stack
        lane_middleware: list[tuple[type, dict[str, Any]]] = [(HttpMetrics, {})] if settings.metrics.enabled else []
        lane_middleware.append((GateMiddleware, {"settings": settings}))  # AuditGate: /v1 only, nothing to do here
        app.fast_lane = FastLane(app, {"/ads": submit_route, "/ads/batch": batch_route}, lane_middleware)
    return app


async def _client_gone(request: Request, exc: Exception) -> Response:
    """The client went away (or was cut off by ``api.read_timeout``) before its body arrived: nobody is left
    to answer, and it is not a server error. The response is dropped by the server."""
    log.debug("client disconnected before its request body arrived", extra={"path": request.url.path})
    return Response(status_code=400)
