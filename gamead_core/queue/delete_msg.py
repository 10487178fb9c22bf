"""Deleting one message of a stream, where another deleter may have been first (the doctor's repair, the worker's
mover)."""

from __future__ import annotations

import nats.js.errors
from nats.js import JetStreamContext

from gamead_core.queue.connection import JS_STREAM_MSG_DELETE_FAILED, nats_boundary


async def delete_if_present(js: JetStreamContext, stream: str, seq: int) -> bool:
    """Delete one stream message; False (not an error) if it is already gone."""
    with nats_boundary():
        try:
            return bool(await js.delete_msg(stream, seq))
        except nats.js.errors.NotFoundError:
            return False
        except nats.js.errors.APIError as exc:
            if exc.err_code == JS_STREAM_MSG_DELETE_FAILED or "not found" in (exc.description or "").lower():
                return False  # "no message found" / "sequence N not found": someone deleted it first
            raise
