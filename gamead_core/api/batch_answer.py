"""The answer of ``POST /ads/batch`` as JSON bytes: one result per ad in order, then the counts (issue 14.3).

The body is ``{"results": [...], "accepted": n, "duplicates": d, "rejected": m}``, exactly ``orjson.dumps`` of
that object (``tests/unit/test_queued_json.py``), but written as bytes once: an accepted ad of the
batch pipeline (:class:`gamead_core.intake.Queued`: always ``queued``, its id a ULID and its time shared by the
batch, nothing to escape) is one ``%``-format of a template, with no dict per ad and one ``submittedAt`` string
per batch; any other result (an ad answered from an earlier one, an error) is ``orjson.dumps`` of its dict.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from gamead_core.errors import GameadError
from gamead_core.intake import Accepted, Queued
from gamead_core.models import iso_z

__all__ = ["answer_bytes", "error", "error_of", "result_of"]

_QUEUED = b'{"id":"%s","status":"queued","priority":%d,"submittedAt":"%s","duplicate":%s}'
_BOOL = {False: b"false", True: b"true"}


def error(code: str, message: str, details: Any = None) -> dict[str, Any]:
    """One ad's error, as every API error is shaped: ``{"error": {"code", "message", "details"}}``."""
    return {"error": {"code": code, "message": message, "details": details}}


def error_of(exc: GameadError) -> dict[str, Any]:
    """:func:`error` of a gamead error (its ``client_message`` only, when it has one: the full text may name
    servers)."""
    if exc.client_message is not None:
        return error(exc.code, exc.client_message)
    return error(exc.code, exc.message, exc.details)


def result_of(outcome: Accepted | Queued | GameadError | dict[str, Any], stamps: dict[datetime, bytes]) -> bytes:
    """One ad's result as JSON bytes: the 202 body of ``POST /ads`` for an accepted ad (``{"id", "status",
    "priority", "submittedAt", "duplicate"}``), the error of a :class:`GameadError`, or a result dict as it is.
    ``stamps``: ``submittedAt`` bytes already made in this batch, by time (one ``isoformat`` per batch)."""
    if type(outcome) is Queued:
        text = stamps.get(outcome.submitted_at)
        if text is None:
            text = stamps[outcome.submitted_at] = iso_z(outcome.submitted_at).encode()
        return _QUEUED % (outcome.id.encode(), outcome.priority, text, _BOOL[outcome.duplicate])
    if isinstance(outcome, Accepted):
        rec = outcome.record
        return orjson.dumps({"id": rec.id, "status": rec.status.value, "priority": rec.priority,
                             "submittedAt": iso_z(rec.submitted_at), "duplicate": outcome.duplicate})
    if isinstance(outcome, GameadError):
        return orjson.dumps(error_of(outcome))
    return orjson.dumps(outcome)


def answer_bytes(results: list[bytes], accepted: int, duplicates: int) -> bytes:
    """The whole body: ``results`` (each :func:`result_of`, in order) and the counts: ``accepted`` ads on the
    queue (those answered ``duplicate: true`` included, attack30a F6), ``duplicates`` (answered ``duplicate:
    true``: nothing queued by this request), ``rejected`` (the rest: an error each)."""
    return b'{"results":[%s],"accepted":%d,"duplicates":%d,"rejected":%d}' % (
        b",".join(results), accepted, duplicates, len(results) - accepted)
