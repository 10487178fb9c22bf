"""A level consumer's counts from one ``CONSUMER.INFO``, read without nats-py's dataclasses (cpu60).

nats-py's ``js.consumer_info`` parses the answer with ``json.loads`` and builds a ``ConsumerInfo``, its
``ConsumerConfig`` (some 40 fields), two ``SequenceInfo`` and a ``ClusterInfo`` by walking every dataclass field:
17 µs for a level consumer's 729 B answer, against 2.3 µs for orjson and the five numbers a head read uses
(``benchmarks/bench_level_depth.py``). The queue heads are read on the looks of a busy worker
(:mod:`gamead_core.queue.pull`; ~0.2 reads per ad it runs at 1,000 ads/s), by the API's sampler and ``/v1/levels``.
Same request, same subject, same errors as nats-py's call.
"""

from __future__ import annotations

from typing import NamedTuple

import nats.errors
import orjson
from nats.js import JetStreamContext
from nats.js.errors import APIError, ServiceUnavailableError

__all__ = ["ConsumerCounts", "consumer_counts", "counts_of"]


class ConsumerCounts(NamedTuple):
    """What a head read uses of a consumer's info (NATS's names; 0 where the answer has none)."""

    num_pending: int  #: not yet delivered
    num_ack_pending: int  #: delivered, not acknowledged
    num_redelivered: int  #: delivered more than once, not acknowledged
    delivered_seq: int  #: stream sequence of the last delivered message (``delivered.stream_seq``)
    ack_floor_seq: int  #: stream sequence of the ack floor (``ack_floor.stream_seq``)


async def consumer_counts(js: JetStreamContext, stream: str, consumer: str) -> ConsumerCounts:
    """``CONSUMER.INFO`` of ``consumer`` on ``stream`` through ``js`` (its API prefix and timeout), as
    ``js.consumer_info`` asks it. Raises what that call raises: nats-py's ``TimeoutError``,
    ``ServiceUnavailableError`` (no responders), the ``APIError`` subclass of an error answer (``NotFoundError``:
    no such consumer or stream), nats-py's connection errors; ``ValueError`` for an answer that is not JSON."""
    try:
        msg = await js._nc.request(f"{js._prefix}.CONSUMER.INFO.{stream}.{consumer}", b"",  # noqa: SLF001
                                   timeout=js._timeout)  # noqa: SLF001
    except nats.errors.NoRespondersError:
        raise ServiceUnavailableError from None  # as nats-py's _api_request
    return counts_of(msg.data)


def counts_of(data: bytes) -> ConsumerCounts:
    """The counts in a ``CONSUMER.INFO`` answer ``data``. Raises the ``APIError`` subclass of an error answer
    (``NotFoundError`` for 404 …), ``ValueError`` (orjson's ``JSONDecodeError``) for one that is not JSON. Pure."""
    resp = orjson.loads(data)
    if "error" in resp:
        raise APIError.from_error(resp["error"])  # raises its subclass (NotFoundError for 404 …)
    delivered, floor = resp.get("delivered") or {}, resp.get("ack_floor") or {}
    return ConsumerCounts(resp.get("num_pending") or 0, resp.get("num_ack_pending") or 0,
                          resp.get("num_redelivered") or 0, delivered.get("stream_seq") or 0,
                          floor.get("stream_seq") or 0)
