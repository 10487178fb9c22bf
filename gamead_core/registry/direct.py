"""The registry's one raw JetStream request: a batched direct get of the last value of every key.

``$JS.API.DIRECT.GET.<stream>`` with ``{"multi_last": [subjects], "batch": n}`` (JetStream ≥ 2.11, ADR-31)
answers with one message per key and an end-of-batch marker (status header ``204``; ``404`` when there is
nothing) — no consumer is created. nats.py has no call for it, so it is written out here, once.

The whole batch has one deadline (the caller's ``timeout``, ``nats.request_timeout``): a replica or leader that
stops answering half-way (stopped, stalled) ends it there, with what arrived and ``complete`` False, rather than
each message waiting on its own.
"""

from __future__ import annotations

import asyncio
import logging
from typing import NamedTuple

import nats.errors
import nats.js.errors
import orjson
from nats.aio.client import Client as NATS
from nats.js.kv import KeyValue

from gamead_core import names
from gamead_core.errors import QueueUnavailable
from gamead_core.queue.connection import nats_boundary
from gamead_core.queue.read_end import unsubscribe_quietly

log = logging.getLogger(__name__)

_STATUS = names.HDR_STATUS


class Values(NamedTuple):
    """What a batched read got: the values that arrived, and whether the batch ended (False: its deadline came
    first, so keys may be missing)."""

    values: list[bytes]
    complete: bool


async def last_values(nc: NATS, stream: str, prefix: str, *, batch: int, timeout: float) -> Values:
    """The last value of every key under ``prefix`` (``$KV.<bucket>.``) of ``stream``, deleted and purged
    keys left out; at most ``batch`` of them. When the answer does not end within ``timeout`` seconds (the
    whole batch), what arrived with ``complete`` False. Raises ``QueueUnavailable`` when the server answers
    with an error status, and the gamead error tree for NATS errors."""
    request = orjson.dumps({"multi_last": [f"{prefix}>"], "batch": batch})
    with nats_boundary():
        inbox = nc.new_inbox()
        sub = await nc.subscribe(inbox)
        out: list[bytes] = []
        try:
            await nc.publish(f"$JS.API.DIRECT.GET.{stream}", request, reply=inbox)
            deadline = asyncio.get_running_loop().time() + timeout
            while True:
                left = deadline - asyncio.get_running_loop().time()
                try:
                    if left <= 0:
                        raise asyncio.TimeoutError
                    msg = await sub.next_msg(timeout=left)
                except (asyncio.TimeoutError, nats.errors.TimeoutError):
                    return Values(out, False)
                headers = msg.headers or {}
                status = headers.get(_STATUS)
                if status:
                    if status not in ("204", "404"):  # 204 end of batch, 404 no entries
                        raise QueueUnavailable(f"listing the registry failed: status {status}")
                    if status == "204" and int(headers.get("Nats-Num-Pending", "0") or 0):
                        log.warning("registry holds more than %d nodes; listing the first ones", batch)
                    return Values(out, True)
                if headers.get(names.HDR_KV_OPERATION) in ("DEL", "PURGE") or headers.get(names.HDR_MARKER_REASON):
                    continue
                if msg.data:
                    out.append(msg.data)
        finally:
            await unsubscribe_quietly(sub)


async def scan_values(kv: KeyValue, timeout: float) -> Values:
    """Fallback of :func:`last_values` for a bucket without direct access: keys, then one get per key, all within
    ``timeout`` s (``nats.request_timeout``; what arrived by then, ``complete`` False)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    out: list[bytes] = []
    try:
        keys = await asyncio.wait_for(kv.keys(), timeout)
        for key in keys:
            try:
                entry = await asyncio.wait_for(kv.get(key), deadline - loop.time())
            except nats.js.errors.KeyNotFoundError:
                continue
            if entry.value:  # an expired key can come back with value None: treat it as missing
                out.append(entry.value)
    except nats.js.errors.NoKeysError:
        return Values([], True)
    except asyncio.TimeoutError:  # nats-py's TimeoutError too
        return Values(out, False)
    return Values(out, True)


__all__ = ["Values", "last_values", "scan_values"]
