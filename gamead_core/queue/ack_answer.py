"""A JetStream publish's answer (:class:`Ack`, :func:`parse_ack`): what nats-py's ``PubAck.from_response`` and
``APIError.from_error`` make of a reply, with the fields gamead reads (:mod:`gamead_core.queue.acks` awaits them)."""

from __future__ import annotations

from typing import NamedTuple

import orjson
from nats.aio.msg import Msg
from nats.js.errors import APIError, NoStreamResponseError

from gamead_core import names

__all__ = ["Ack", "parse_ack"]

_NO_RESPONDERS = "503"


class Ack(NamedTuple):
    """JetStream's answer to a stored publish (``{"stream", "seq", "duplicate"}``, nats-server ``JSPubAckResponse``).
    ``seq`` of a ``duplicate`` is the first message's with that ``Nats-Msg-Id``. ``count``: the messages of the
    atomic batch this publish committed (its ``"count"``, NATS ADR-50; 0 for a plain publish)."""

    stream: str | None
    seq: int
    duplicate: bool
    count: int = 0


def parse_ack(msg: Msg) -> Ack:
    """The :class:`Ack` of a JetStream publish reply. Raises what ``js.publish`` raises for it:
    ``NoStreamResponseError`` (no stream listens on the subject), the ``APIError`` subclass of an error reply
    (``nats.js.errors.APIError.from_error``: ``ServiceUnavailableError`` for 503 …), ``APIError`` for a reply
    that is not JSON."""
    headers = msg.headers
    if headers and headers.get(names.HDR_STATUS) == _NO_RESPONDERS:
        raise NoStreamResponseError
    try:
        resp = orjson.loads(msg.data)
    except orjson.JSONDecodeError as exc:
        raise APIError(description="the publish ack is not JSON") from exc
    if not isinstance(resp, dict):
        raise APIError(description="the publish ack is not a JSON object")
    error = resp.get("error")
    if error is not None:
        raise APIError.from_error(error)  # raises the specific class itself for most codes
    return Ack(resp.get("stream"), int(resp.get("seq") or 0), bool(resp.get("duplicate")),
               int(resp.get("count") or 0))
