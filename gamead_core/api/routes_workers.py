"""``POST /v1/workers/{id}/quiet`` and ``/resume``: tell one worker to take no new ad, or to take ads again
(operators only, as every ``/v1`` write; audited ``worker.quiet`` / ``worker.resume``).

The id is checked (:func:`gamead_core.ids.is_worker_id`: 404 ``not_found`` for anything else, which never reaches
NATS) and the record written before anything is asked (no record, nothing done). Then a core NATS request on the
worker's control subject (:func:`gamead_core.worker.quiet.control_subject`): the worker answers once its pulls
stopped (or started again): ``{"workerId", "quiet", "changed", "inFlight"}``. No process answering (not running,
an API node's id) or none in time (frozen, its NATS link down): 404 ``worker_not_live``, and the request's
``failed`` audit record names the ``accepted`` one it undoes. The state is the worker's: no API node keeps any.
"""

from __future__ import annotations

import functools

import nats.errors
import orjson
from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel
from starlette.responses import Response

from gamead_core.api.body import no_body
from gamead_core.api.contract import error_responses
from gamead_core.api.responses import json_response
from gamead_core.audit import record_action
from gamead_core.count_words import counted
from gamead_core.errors import GameadError, NotFound, QueueUnavailable
from gamead_core.ids import WORKER_ID_RULE, is_worker_id
from gamead_core.queue.connection import nats_boundary
from gamead_core.stats.document import node_states
from gamead_core.worker.quiet import APPLY_WAIT, Verb, WorkerNotLive, control_subject

router = APIRouter(prefix="/v1/workers", tags=["operations"])
_json = functools.partial(json_response, no_store=True)  #: live data: never cached


class WorkerControlAnswer(BaseModel):
    """The worker's answer to ``quiet`` / ``resume``."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    worker_id: str = Field(description="The worker that answered.")
    quiet: bool = Field(description="Whether it is quiet now: it takes no new ad.")
    changed: bool = Field(description="False when it already was so (asked twice).")
    in_flight: int = Field(description="Ads it runs now (a quiet worker finishes them).")
    draining: bool = Field(default=False, description="It is stopping: it takes no new ad, resumed or not.")


_ID = Path(description=f"The worker's id, as `gamead workers` lists it ({WORKER_ID_RULE}).")


@router.post("/{worker_id}/quiet", summary="Tell one worker to take no new ad; it finishes what it runs",
             response_model=WorkerControlAnswer, responses=error_responses(404))
async def quiet_worker(request: Request, worker_id: str = _ID) -> Response:
    return await _control(request, worker_id, "quiet")


@router.post("/{worker_id}/resume", summary="Tell a quiet worker to take ads again",
             response_model=WorkerControlAnswer, responses=error_responses(404))
async def resume_worker(request: Request, worker_id: str = _ID) -> Response:
    return await _control(request, worker_id, "resume")


async def _control(request: Request, worker_id: str, verb: Verb) -> Response:
    await no_body(request)  # takes none: a body is refused, never ignored (gamead_core.api.body)
    if not is_worker_id(worker_id):  # house rule 3: a client's string never reaches a subject unchecked
        raise NotFound(f"no such worker: {WORKER_ID_RULE}")
    link = request.app.state.link
    if link.nc is None or not link.nc.is_connected:
        raise QueueUnavailable("the queue is unavailable; retry shortly")  # never connection details
    await record_action(getattr(request.app.state, "audit", None), f"worker.{verb}",
                        details={"workerId": worker_id})  # before acting: no record, nothing asked
    wait = APPLY_WAIT + request.app.state.settings.nats.request_timeout
    with nats_boundary():  # any other NATS error: 503 queue_unavailable
        try:
            answer = await link.nc.request(control_subject(worker_id), orjson.dumps({"verb": verb}), timeout=wait)
        except nats.errors.NoRespondersError:
            why = await _stopping(request, worker_id) or "no running worker answers for this id"
            raise WorkerNotLive.named(worker_id, why) from None
        except (nats.errors.TimeoutError, TimeoutError):
            raise WorkerNotLive.silent(worker_id, verb, wait) from None
    try:
        doc = WorkerControlAnswer.model_validate(orjson.loads(answer.data))
    except ValueError:
        raise GameadError(f"worker {worker_id} answered {verb} with unexpected data") from None
    return _json(doc.model_dump(by_alias=True, exclude=None if doc.draining else {"draining"}))  # said when so


async def _stopping(request: Request, worker_id: str) -> str | None:
    """Why a listed worker answers no control request: it is draining (its control subject ended with its pulls:
    it takes no new ad already, probe49 F7), from this node's last registry read; None otherwise."""
    sampler = getattr(request.app.state, "stats_sampler", None)
    if sampler is None:
        return None
    try:
        await sampler.current()  # as GET /v1/workers reads it
        states = node_states(sampler)  # its one decision of a node's state, without the document around it
    except Exception:  # noqa: BLE001 - no registry read: the plain answer
        return None
    node = next((n for n, state in states if n.role == "worker" and n.id == worker_id and state == "draining"), None)
    if node is None:
        return None
    running = node.in_flight
    return "it is stopping (draining): it takes no new ad already" + (
        f", the {counted(running, 'ad')} it runs finish first" if running else "")


__all__ = ["WorkerControlAnswer", "router"]
