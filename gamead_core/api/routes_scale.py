"""``/v1/scale``: what the autoscaler decided and why, and a manual override that expires (operator role).

* ``GET /v1/scale`` → backend, leader, current, desired, the active override and the last decisions,
  read fresh from the shared KV state (any API node answers the same).
* ``POST /v1/scale/override`` ``{"replicas": N, "forSeconds": S}`` → the override wins over the policy
  until it expires (clamped to ``[min_replicas, max_replicas]`` when applied).
* ``DELETE /v1/scale/override`` → back to the policy at the next tick.

:func:`start_autoscaler` runs this node's :class:`~gamead_core.scaling.loop.Autoscaler` from the app's
lifespan; :func:`autoscaler_status` is its in-memory summary for ``/v1/stats``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel
from starlette.responses import Response

from gamead_core import clock
from gamead_core.clock_offset import sampled
from gamead_core.api.body import body_schema, no_body, read_body
from gamead_core.api.contract import error_responses
from gamead_core.api.errors import ValidationFailed
from gamead_core.api.responses import json_response
from gamead_core.api.schemas import OverrideCleared, OverrideSet, ScaleDocument
from gamead_core.audit import record_action
from gamead_core.errors import Conflict, QueueUnavailable
from gamead_core.scaling.bounds import MAX_OVERRIDE_REPLICAS, TOO_SHORT, too_short_reason
from gamead_core.scaling.loop import Autoscaler, AutoscalerDeps, backend_for, new_holder_id, status_document
from gamead_core.scaling.stacks import api_stack
from gamead_core.scaling.store import (
    MAX_OVERRIDE_SECONDS,
    Override,
    ScaleStore,
    StoredOverride,
    active_override,
    clamp_override,
    standing_text,
)
from gamead_core.stats.document import node_states
from gamead_core.stop_bound import settle

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/scale", tags=["scale"])


class OverrideBody(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    replicas: int = Field(ge=0, le=MAX_OVERRIDE_REPLICAS, description="Worker count to hold while the override lasts.")
    for_seconds: float = Field(gt=0, le=MAX_OVERRIDE_SECONDS, description="How long it lasts (at most 7 days).")


_json = functools.partial(json_response, no_store=True)  #: live data: never cached


def _store(request: Request) -> ScaleStore:
    link = request.app.state.link
    if link.js is None or link.nc is None or not link.nc.is_connected:
        raise QueueUnavailable("the queue is unavailable; retry shortly")  # never connection details
    store = getattr(request.app.state, "scale_store", None)
    if store is None or store.js is not link.js:
        store = ScaleStore(link.js, replicas=request.app.state.settings.queue.replicas)
        request.app.state.scale_store = store
    return store  # type: ignore[no-any-return]


async def _document(request: Request) -> tuple[dict[str, Any], StoredOverride]:
    """``GET /v1/scale``'s document (with ``overrideRevision``, what ``If-Match`` names) and the override as read."""
    store = _store(request)
    state, lease, stored = await asyncio.gather(store.state(), store.lease(), store.read_override())
    autoscaler: Autoscaler | None = getattr(request.app.state, "autoscaler", None)
    now = clock.now()
    doc = status_document(state, lease, stored.override, now=now, settings=request.app.state.settings.autoscaler,
                          node_id=autoscaler.node_id if autoscaler else None, registered=_registered(request, now),
                          stack=api_stack(request.app.state.settings))  # whose workers the leader moves
    doc["overrideRevision"] = stored.revision
    return doc, stored


def _registered(request: Request, now: float) -> list[str] | None:
    """The ids of the live nodes in this API's last registry read (the one ``/v1/workers`` shows); None if none."""
    sampler = getattr(request.app.state, "stats_sampler", None)
    if sampler is None or sampler.registry_read_at is None:
        return None
    return [node.id for node, state in node_states(sampler, now) if state != "gone"]


def _expected(request: Request, read: StoredOverride) -> int:
    """The revision a change must find: ``If-Match`` (``overrideRevision`` of a ``GET /v1/scale``, quoted or not)
    when sent, else the one just read. 422 ``validation_failed`` for an ``If-Match`` that is not a revision."""
    sent = request.headers.get("if-match")
    if sent is None:
        return read.revision
    text = sent.strip().strip('"')
    if not text.isascii() or not text.isdigit() or len(text) > 19:
        raise ValidationFailed("If-Match: must be the overrideRevision of GET /v1/scale (a number)",
                               details=[{"loc": "If-Match", "msg": "not a revision", "type": "if_match"}])
    return int(text)


def _lasts_a_decision(for_seconds: float, interval: float) -> None:
    """422 ``validation_failed`` for an override shorter than the autoscaler's decision interval (seconds, the
    leader's ``intervalSeconds``): it could end before any decision applies it, and the operator was told it would
    be applied (attack41b F4: ``gamead scale set 3 --for 1ms``, exit 0, "applied … at its next decision")."""
    if for_seconds < interval:
        raise ValidationFailed(f"an override of {for_seconds:g} s is {too_short_reason(interval)}",
                               details=[{"loc": "forSeconds", "msg": f"at least {interval:g} s", "type": TOO_SHORT,
                                         "min": interval}])


def _changed(stands: StoredOverride, what: str) -> Conflict:
    """409 ``conflict``: another operator changed the override first; names what stands (and its revision)."""
    now = clock.now()
    ov = active_override(stands.override, now)
    return Conflict(f"{what}: another operator changed the override first; {standing_text(stands, now)} stands",
                    details={"override": ov.wire(now) if ov else None, "overrideRevision": stands.revision})


@router.get("", summary="Autoscaler: backend, leader, current and desired workers, override, last decisions",
            response_model=ScaleDocument)
async def get_scale(request: Request) -> Response:
    return _json((await _document(request))[0])


@router.post("/override", summary="Hold a worker count for a while, whatever the policy says",
             openapi_extra=body_schema(OverrideBody), status_code=201, response_model=OverrideSet,
             responses=error_responses(400, 409, 422))
async def set_override(request: Request) -> Response:
    """A compare-and-set on the override's revision (the one read, or ``If-Match``): 201 only when this override
    was written and still stands once the answer is made, naming the override it replaced (``replaced``: the one
    in force at that revision, or null); else 409 ``conflict`` naming what stands."""
    body = await read_body(request, OverrideBody)
    settings = request.app.state.settings.autoscaler
    now = clock.now()
    principal = getattr(request.state, "principal", None)
    who = getattr(principal, "name", None) or (request.client.host if request.client else None)
    ov = Override(body.replicas, now + body.for_seconds, now, who)
    store = _store(request)
    before, read = await _document(request)
    _lasts_a_decision(body.for_seconds, float(before.get("intervalSeconds") or settings.interval))
    expected = _expected(request, read)
    replaced = active_override(read.override, now) if expected == read.revision else None  # else: no write
    # Clamped by the leader's bounds when known (gamead up passes its own), else this node's settings.
    low = int(before.get("minReplicas", settings.min_replicas))
    high = int(before.get("maxReplicas", settings.max_replicas))
    effective, note = clamp_override(body.replicas, low, high)
    # before acting: no record, no override; the record says what was asked and what will hold (the bounds too)
    await record_action(getattr(request.app.state, "audit", None), "scale.set",
                        details={"replicas": body.replicas, "forSeconds": body.for_seconds,
                                 "effectiveReplicas": effective, "minReplicas": low, "maxReplicas": high,
                                 # whose override this one ends (attack39a F3: the trail could not say)
                                 **({"replaces": replaced.wire(now)} if replaced else {})})
    what = f"override {body.replicas} not set"
    try:
        revision = await store.put_override(ov, expected=expected)
    except Conflict:
        raise _changed(await store.read_override(), what) from None
    doc, stands = await _document(request)
    if stands.revision != revision:
        raise _changed(stands, f"override {body.replicas} was set, then replaced before this answer")
    log.info("manual override: %d workers for %.0fs", body.replicas, body.for_seconds)
    _poke(request)
    return _json({"override": ov.wire(now), "replaced": replaced.wire(now) if replaced else None,
                  "effectiveReplicas": effective, "note": note, "appliedBy": doc["appliedBy"], "status": doc}, 201)


@router.delete("/override", summary="End the manual override; the policy decides again at the next tick",
               response_model=OverrideCleared, responses=error_responses(409, 422))
async def clear_override(request: Request) -> Response:
    """A compare-and-set like ``POST``: ``cleared`` true when this request removed the override (``removed``: it),
    false when none was set; 409 ``conflict`` (naming what stands) when another operator set one first or right after."""
    await no_body(request)  # takes none: a body is refused, never ignored (gamead_core.api.body)
    store = _store(request)
    read = await store.read_override()
    expected = _expected(request, read)
    standing = read.override if expected == read.revision else None  # as `removed` below: an expired one too
    # what it removes, or that nothing stood (attack39a F3: a no-op clear read as one that removed alice's override)
    await record_action(getattr(request.app.state, "audit", None), "scale.clear",  # no record, no change
                        details={"removes": standing.wire(clock.now()) if standing else None})
    if expected != read.revision:  # If-Match named what stood before: another operator changed it since
        raise _changed(read, "override not cleared")
    cleared = read.override is not None
    if cleared:
        try:
            await store.delete_override(expected=expected)
        except Conflict:
            raise _changed(await store.read_override(), "override not cleared") from None
    _poke(request)
    doc, stands = await _document(request)
    if stands.override is not None:
        raise _changed(stands, "override cleared, then set again before this answer" if cleared
                       else "no override to clear, then one was set before this answer")
    removed = read.override.wire(clock.now()) if cleared and read.override is not None else None
    return _json({"cleared": cleared, "removed": removed, "appliedBy": doc["appliedBy"], "status": doc})


# --- wiring ------------------------------------------------------------------------------------------


def _poke(request: Request) -> None:
    """This node's autoscaler, if it leads, acts on a new override now, back-off forgotten (a leader elsewhere
    sees it within an interval, even during a back-off: :mod:`gamead_core.scaling.retry`)."""
    autoscaler: Autoscaler | None = getattr(request.app.state, "autoscaler", None)
    if autoscaler is not None:
        autoscaler.poke()


def autoscaler_status(app: FastAPI) -> dict[str, Any] | None:
    """This node's last view of the autoscaler (no I/O), for the ``autoscaler`` section of ``/v1/stats``."""
    autoscaler: Autoscaler | None = getattr(app.state, "autoscaler", None)
    if autoscaler is None:
        return None
    doc = autoscaler.status()
    doc["decisions"] = doc["decisions"][:5]
    return doc


async def start_autoscaler(app: FastAPI) -> Callable[[], Awaitable[None]]:
    """Start this node's autoscaler task (after ``app.state.link`` is set); return its stop function.

    Backend ``kubernetes``: the node competes for the lease and, as leader, scales the Deployment.
    ``none``: it competes too, decides and records, but changes nothing (advice only). ``local``: it never
    leads — ``gamead up`` owns the worker processes and runs the autoscaler itself — and only shows the
    shared state.
    """
    settings = app.state.settings
    node_id = getattr(app.state, "node_id", None) or new_holder_id("api")
    sampler = getattr(app.state, "stats_sampler", None)  # the node's one sampler: /v1/stats shows the same
    if sampler is None:
        deps = AutoscalerDeps.standalone(settings, app.state.link, node_id=node_id,
                                         backend=backend_for(settings.autoscaler))
    else:
        deps = AutoscalerDeps(link=app.state.link, sampler=sampler, node_id=node_id,
                              backend=backend_for(settings.autoscaler), registry=settings.registry,
                              stream_replicas=settings.queue.replicas,
                              request_timeout=settings.nats.request_timeout)
    autoscaler = Autoscaler(settings.autoscaler, deps)
    app.state.autoscaler = autoscaler
    stop = asyncio.Event()
    beat = settings.registry.heartbeat_interval

    async def run() -> None:  # the lease judged on nats-server's clock, not the host's (attack33a F5): NATS
        link_ready = getattr(app.state.link, "ready", None)  # reached, then the node's first heartbeat samples it
        if link_ready is not None:
            waits = [asyncio.ensure_future(link_ready.wait()), asyncio.ensure_future(stop.wait())]
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            for waiting in waits:
                waiting.cancel()
        if not stop.is_set():
            await sampled(within=2 * beat + settings.nats.request_timeout)
        await autoscaler.run(stop)

    task = asyncio.create_task(run(), name="gamead-autoscaler")

    async def stop_autoscaler() -> None:
        stop.set()
        await settle(task, 5.0, 3.0, "the autoscaler")  # cancelled again until it ends (hang50), bounded

    return stop_autoscaler


__all__ = ["autoscaler_status", "router", "start_autoscaler"]
