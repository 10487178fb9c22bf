"""The FastAPI application factory of ``gamead serve``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from gamead_core.api import routes_ads, routes_health
from gamead_core.api.errors import install_error_handlers
from gamead_core.api.state import QueueLink
from gamead_core.config import GameadSettings


def create_app(settings: GameadSettings, nats_url: str) -> FastAPI:
    """Build the API. NATS is connected in the lifespan; the app serves (503s) even before it is."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        link = QueueLink(settings, nats_url)
        app.state.link = link
        await link.start()
        try:
            yield
        finally:
            await link.stop()

    app = FastAPI(
        title="gamead",
        version="0.1.0",
        summary="Submit game ads, queue them by priority, read their analysis.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    install_error_handlers(app)
    app.include_router(routes_ads.router, tags=["ads"])
    app.include_router(routes_health.router, tags=["health"])
    return app
