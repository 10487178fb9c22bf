"""The headers of a write to an ad's record key (:func:`write_headers`), and those of a fresh record's create, worked
out once per origin (:func:`create_heads`: the submit path sends them with every ``POST /ads``)."""

from __future__ import annotations

import functools

from gamead_core import names
from gamead_core.queue.hpub import plain_lines


def write_headers(last: int | None, ttl: float | None, *, delete: bool = False,
                  origin: str | None = None) -> dict[str, str]:
    """The headers of a write to a record's key: the compare-and-set over revision ``last`` (None: none), the
    TTL in whole seconds (as nats-py's ``js.publish(msg_ttl=…)`` writes it), a delete marker (ADR-8), the
    ``Gamead-Origin`` of a create (``origin``: :attr:`AdStore.origin`); on a delete marker ``origin`` is the API
    withdrawing the ad (``Gamead-Withdrawn``: its client was told "not queued", read by ``gamead doctor``)."""
    headers = {names.HDR_KV_OPERATION: "DEL"} if delete else {names.HDR_ORIGIN: origin} if origin else {}
    if delete and origin:
        headers[names.HDR_WITHDRAWN] = origin
    if last is not None:
        headers[names.HDR_EXPECTED_LAST_SUBJECT_SEQ] = str(last)
    if ttl is not None:
        headers[names.HDR_TTL] = str(int(ttl))
    return headers


@functools.lru_cache(maxsize=16)
def create_heads(origin: str | None) -> tuple[dict[str, str], str | None]:
    """``write_headers(0, None, origin=origin)`` (a fresh record's create-only put, no TTL) and their lines as
    :func:`~gamead_core.queue.hpub.plain_lines` writes them, made once per origin (an API's incarnation): the same
    for every ``POST /ads``, they were built and checked for each (~10k instructions; cpuapi48). The dict is
    shared: never changed by its readers (the publish and its resends)."""
    headers = write_headers(0, None, origin=origin)
    return headers, plain_lines(headers)
