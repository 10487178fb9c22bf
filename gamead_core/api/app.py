"""The FastAPI application factory of ``gamead serve``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from gamead_core.api import routes_ads, routes_dlq, routes_health
from gamead_core.api.cache import AdCache
from gamead_core.api.errors import install_error_handlers
from gamead_core.api.middleware import GateMiddleware
from gamead_core.api.ratelimit import RateLimiter
from gamead_core.api.state import QueueLink
from gamead_core.config import GameadSettings
from gamead_core.redis_link import RedisLink


def create_app(settings: GameadSettings, nats_url: str) -> FastAPI:
    """Build the API. NATS is connected in the lifespan; the app serves (503s) even before it is."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        link = QueueLink(settings, nats_url)
        app.state.link = link
        redis = RedisLink.from_settings(settings.redis)  # None = one-machine mode: in-process cache/limits
        app.state.redis = redis
        app.state.cache = AdCache(redis, settings.cache.ttl)
        app.state.limiter = RateLimiter(redis)
        if redis is not None:
            await redis.start()
        await link.start()
        try:
            yield
        finally:
            await link.stop()
            if redis is not None:
                await redis.close()

    app = FastAPI(
        title="gamead",
        version="0.1.0",
        summary="Submit game ads, queue them by priority, read their analysis.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    install_error_handlers(app)
    app.add_middleware(GateMiddleware, settings=settings)  # body cap → auth → rate limit
    app.include_router(routes_ads.router, tags=["ads"])
    app.include_router(routes_health.router, tags=["health"])
    app.include_router(routes_dlq.router)
    return app
