"""Operator read-outs: ``GET /v1/stats`` and ``GET /v1/workers``, both served from memory.

:func:`start_observers` runs, on every API node, the stats sampler (one sample per second) and the node's
own registry heartbeat. The app's lifespan starts it once ``app.state.link`` exists and awaits the stop
function it returns on shutdown; NATS may be down at either moment.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, FastAPI, Query, Request
from starlette.responses import Response

from gamead_core.api.cache import redis_stats
from gamead_core.api.errors import StatsUnavailable
from gamead_core.api.responses import json_response
from gamead_core.api.routes_scale import autoscaler_status
from gamead_core.api.schemas import StatsDocument, WorkersDocument
from gamead_core.registry import Registry, api_node_info, new_api_node_id, run_heartbeat
from gamead_core.registry.beat import BeatHealth
from gamead_core.stats import QueueSampler
from gamead_core.stop_bound import ended
from gamead_core.telemetry.metrics import api_metrics_url

log = logging.getLogger(__name__)

router = APIRouter()

HISTORY_MAX = 600


_json = functools.partial(json_response, no_store=True)  #: live data: never cached


def _sampler(request: Request) -> QueueSampler:
    sampler = getattr(request.app.state, "stats_sampler", None)
    if sampler is None:
        raise StatsUnavailable("this API node does not sample stats (observers not started)")
    return sampler  # type: ignore[no-any-return]


@router.get("/v1/stats", summary="Queue depth, rates, latency, DLQ size, NATS and history (from memory)",
            response_model=StatsDocument)
async def get_stats(
    request: Request,
    history: Annotated[
        int, Query(ge=0, le=HISTORY_MAX, description="Most recent one-second samples returned in `history`.")
    ] = HISTORY_MAX,
) -> Response:
    """The stats sampler's last reading (once a second; every figure is described in the README). Per level
    `pending`, `ackPending`, `redelivered` are JetStream's counts; `oldestAgeSeconds` is the oldest waiting ad's
    age: the queue's head or the oldest ad a worker holds unstarted (delivered, not started: its long poll's ad
    waiting for a free slot, its prefetch buffer), as of that worker's last heartbeat or announcement, from live
    workers only, or the oldest waiting for redelivery (handed back, due, its lease lost: from its first publish;
    a retry in its back-off is left out; README Glossary, "oldest age");
    `overHorizon`: past `agingHorizonSeconds`."""
    sampler = _sampler(request)
    await sampler.current()  # read before judging: once if never (a fresh API), again after this process stood still
    return _json(sampler.stats(history))


@router.get("/v1/workers", summary="Live API nodes and workers from the registry, with their health",
            response_model=WorkersDocument)
async def get_workers(
    request: Request,
    role: Annotated[Literal["api", "worker"] | None, Query(description="Only nodes of this role.")] = None,
) -> Response:
    sampler = _sampler(request)
    await sampler.current()  # read before judging: once if never (a fresh API), again after this process stood still
    return _json(sampler.workers_payload(role))


def _optional_sections(app: FastAPI) -> dict[str, Callable[[], Any]]:
    """``cache`` (Redis, cache and rate-limit counters) and ``autoscaler`` (its last decision), each read from
    memory once per sample."""
    return {"cache": lambda: redis_stats(app), "autoscaler": lambda: autoscaler_status(app)}


def _id_lost(app: FastAPI) -> None:
    """This node's key holds another process's entry (:mod:`gamead_core.registry.owner`: a copy of this process, an
    entry written by hand), its beats ended: the node stops serving and ``gamead serve`` exits 5 with the beat's
    line (``state.refused``, as refused credentials: :func:`gamead_core.queue.refusal.serve_until_refused`).
    Serving on, it had no entry of its own (out of ``gamead workers`` and the doctor's view) while its id, the
    autoscaler lease's holder and its writes' origin, was another live process's (claim45)."""
    if getattr(app.state, "refused", None) is None:
        app.state.refused = app.state.beat_health.lost
    if (stop := getattr(app.state, "stop_serving", None)) is not None:
        stop()


async def start_observers(app: FastAPI) -> Callable[[], Awaitable[None]]:
    """Start the stats sampler and this node's heartbeat; return the coroutine function that stops both.

    Call it after ``app.state.link`` is set. Until NATS is connected the sampler reports it unavailable and
    the heartbeat waits; both carry on by themselves when it comes.
    """
    settings = app.state.settings
    link = app.state.link
    # the link's: its record creates name this incarnation (Gamead-Origin), which the reaper finds by the heartbeat
    node_id, started = getattr(link, "node_id", None) or new_api_node_id(), getattr(link, "started", time.time())
    metrics_url = api_metrics_url(settings.api.host, settings.api.port) if settings.metrics.enabled else None
    sampler = QueueSampler(link, settings, node_id=node_id, extras=_optional_sections(app))
    app.state.stats_sampler = sampler
    app.state.node_id = node_id
    stop = asyncio.Event()
    app.state.beat_health = BeatHealth()

    async def beat_when_connected() -> None:
        await link.ready.wait()
        registry = Registry(link.nc, link.js, settings.registry, replicas=settings.queue.replicas,
                            timeout=settings.nats.request_timeout)
        sampler.registry = registry
        await run_heartbeat(
            registry,
            lambda: api_node_info(node_id, started=started, draining=stop.is_set(),
                                  heartbeat_interval=settings.registry.heartbeat_interval,
                                  partitions=settings.queue.partitions).model_copy(
                update={"metrics_url": metrics_url}),
            settings.registry.heartbeat_interval,
            stop,
            unfinished=link.unsettled_count,  # left unsettled: the entry expires, the reaper settles them
            health=app.state.beat_health,  # /readyz's registry check
            lost=lambda: _id_lost(app),  # another process's entry in this node's key: stop serving, exit 5
        )

    tasks = [
        asyncio.create_task(sampler.run(stop), name="gamead-stats-sampler"),
        asyncio.create_task(beat_when_connected(), name="gamead-api-heartbeat"),
    ]

    async def stop_observers() -> None:
        stop.set()
        _, pending = await asyncio.wait(tasks, timeout=3.0)
        await ended(pending, 2.0, "the stats sampler and heartbeat")  # a cancel a NATS await took (hang50)
        for task in tasks:
            if task.done() and not task.cancelled() and isinstance(error := task.exception(), Exception):
                log.warning("observer ended with an error: %r", error)

    return stop_observers

