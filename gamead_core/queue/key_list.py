"""The keys of a KV bucket at one instant, from the server's subject index: ``STREAM.INFO`` with
``subjects_filter`` (NATS JetStream API, ``JSApiStreamInfoRequest``), answered from the index in one piece.

The whole-bucket read (:mod:`gamead_core.queue.snapshot`) finds the keys rewritten during its first pass by reading
the messages past it, headers only; writers faster than that read outrun it (ci50: CI's run of 4ec67033 answered
503 ``scan_incomplete`` to a listing of 21,000 records beside a writer rewriting them as fast as it could, "25601
read"). The index has every key at once, however fast they move, but lists the whole stream, not a window: so it is
asked only when the stream holds at most a bound of subjects (its ``num_subjects``, counted first).
"""

from __future__ import annotations

from typing import Any

import orjson
from nats.js import JetStreamContext

from gamead_core.queue.connection import nats_boundary

#: subjects a stream info lists in one answer (nats-server ``JSMaxSubjectDetails``): past it the answer is paged
SERVER_PAGE = 100_000


async def keys_now(js: JetStreamContext, stream: str, subject: str, *, at_most: int,
                   timeout: float = 5.0) -> list[str] | None:
    """The subjects of ``stream`` matching ``subject`` (a wildcard) that hold a message, as the server's index has
    them at one instant; None when the stream holds more than ``at_most`` subjects (of any kind; capped at
    :data:`SERVER_PAGE`), which the caller does not read this way. Two requests: ``num_subjects`` first, then the
    list. Raises the gamead error of a failed request (:func:`~gamead_core.queue.connection.nats_boundary`)."""
    at_most = min(at_most, SERVER_PAGE)
    with nats_boundary():
        counted = await _info(js, stream, None, timeout)
        if (counted.get("state") or {}).get("num_subjects", at_most + 1) > at_most:
            return None
        listed = await _info(js, stream, subject, timeout)
    subjects = (listed.get("state") or {}).get("subjects") or {}
    if len(subjects) > at_most or listed.get("total", 0) > len(subjects):  # grew since it was counted: paged
        return None
    return list(subjects)


async def _info(js: JetStreamContext, stream: str, subject: str | None, timeout: float) -> dict[str, Any]:
    """``STREAM.INFO`` of ``stream`` as the server's JSON (nats-py's ``StreamState`` drops ``num_subjects``), with
    its ``subjects`` map for ``subject``. Raises nats-py's errors (an API error as ``APIError``)."""
    request = orjson.dumps({"subjects_filter": subject}) if subject else b""
    return await js._api_request(f"{js._prefix}.STREAM.INFO.{stream}", request, timeout=timeout)
