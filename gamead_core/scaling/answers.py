"""The second sign ``gamead up``'s liveness probe (:mod:`gamead_core.scaling.probe`) asks for before it kills a
child whose registry heartbeat is silent: does the child answer over HTTP, and what did its heartbeat last fail on.

A heartbeat is a KV *write*; writes can fail while the child serves and reads work (JetStream's memory or file
store at its limit, "insufficient resources"; the child's ``nats.max_pending_bytes`` bound; the registry stream
at its limits: review26 F7). Silence alone then says nothing about the process, so :func:`ask` asks the child
itself, as a Kubernetes liveness probe does: the API on ``/healthz`` at the port ``gamead up`` gave it, a worker
on its ``/metrics`` (:mod:`gamead_core.telemetry.metrics_listener`, served from the worker's own event loop,
the loop that beats and settles ads). Both answer from the process's event loop, so a process that is stopped
(SIGSTOP), or whose loop is blocked or spinning, does not answer within :data:`ANSWER_TIMEOUT`; one that
answers 200-399 within it is alive (one client for the probe's life: :func:`liveness_client`).
:func:`heartbeat_error` reads the child's own log for why its heartbeat fails, which is what the operator must fix.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import httpx

from gamead_core.errors import error_text

#: Seconds a child's liveness endpoint gets to answer (Kubernetes' ``timeoutSeconds`` is 1 s; 2 s leaves room for
#: a loaded machine; a child that is slower is judged on its CPU readings as before).
ANSWER_TIMEOUT = 2.0
#: Requests in flight at once: one per child asked (at most 64 workers and the API, each asked once a reading).
MAX_ASKS = 128
#: Bytes of a child's log searched, from its end, for its heartbeat's last error.
LOG_TAIL = 65536
_FAILED = re.compile(r"heartbeat failed \(retrying every [^)]*\): (.*)")
_RESTORED = "heartbeat restored"


@dataclass(frozen=True)
class Answer:
    """What a child's liveness endpoint did: ``live`` (it answered 200-399 within the deadline) and ``said``
    (``/healthz answered 200``, ``/healthz: no answer in 2s (ReadTimeout)``, ``/healthz answered 503``)."""

    live: bool
    said: str


def liveness_client(timeout: float = ANSWER_TIMEOUT) -> httpx.AsyncClient:
    """The one HTTP client of a probe's life, for :func:`ask` (create it once and close it when the probe stops:
    building one loads a TLS context, ~19 ms of synchronous work on the caller's event loop, review27 F4).
    ``timeout`` (s): httpx's bound on each step (connect, write, read, pool); :func:`ask` bounds the whole
    request too. No keep-alive, as the kubelet's HTTP probes: each ask is a new connection, so a connection the
    child closed while idle can never be taken for no answer. No proxy from the environment (``trust_env``)."""
    return httpx.AsyncClient(timeout=httpx.Timeout(timeout), trust_env=False,
                             limits=httpx.Limits(max_connections=MAX_ASKS, max_keepalive_connections=0))


async def ask(client: httpx.AsyncClient, url: str, timeout: float = ANSWER_TIMEOUT) -> Answer:
    """GET ``url`` (a child's ``/healthz`` or ``/metrics``, on this machine; an IPv6 host bracketed,
    ``http://[::1]:8081/metrics``) with ``client`` (:func:`liveness_client`), the whole request (connecting,
    sending, the status and the body) within ``timeout`` seconds. Returns its :class:`Answer`: live for an answer
    200-399 (the rule of a Kubernetes HTTP liveness probe); not live for a refused connection, no whole answer
    within ``timeout``, another status, or a ``url`` httpx cannot read (``said`` then names it). Never raises
    (but :class:`asyncio.CancelledError`)."""
    path = url
    try:
        target = httpx.URL(url)
        path = target.path
        async with asyncio.timeout(timeout):  # httpx's timeout bounds each step only (each read anew)
            answer = await client.get(target)
    except TimeoutError:
        return Answer(False, f"{path}: no answer in {timeout:g}s")
    except httpx.TimeoutException as exc:
        return Answer(False, f"{path}: no answer in {timeout:g}s ({type(exc).__name__})")
    except httpx.InvalidURL as exc:
        return Answer(False, f"{path}: not a URL ({exc})")
    except Exception as exc:  # noqa: BLE001 - httpx.HTTPError and whatever else: said, as no answer
        return Answer(False, f"{path}: {error_text(exc) or type(exc).__name__}")
    return Answer(200 <= answer.status_code < 400, f"{path} answered {answer.status_code}")


def heartbeat_error(log: Path, since: float, slack: float = 2.0) -> str | None:
    """Why the child whose log is ``log`` cannot write its heartbeat: the error of its last ``heartbeat failed``
    line (:func:`gamead_core.registry.beat.run_heartbeat` logs one per outage) when it is later than a
    ``heartbeat restored`` line and, for a JSON line (``ts``), not older than ``since`` - ``slack`` (epoch
    seconds: the silence's start; ``ts`` has whole seconds). None when the last :data:`LOG_TAIL` bytes hold no
    such line or the log cannot be read."""
    try:
        with open(log, "rb") as fh:
            fh.seek(0, 2)
            fh.seek(max(0, fh.tell() - LOG_TAIL))
            lines = fh.read(LOG_TAIL).decode("utf-8", "replace").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        if "heartbeat" not in line:
            continue
        message, at = line, None
        if line.lstrip().startswith("{"):
            try:
                record = json.loads(line)
                message, at = str(record.get("message", "")), record.get("ts")
            except ValueError:
                pass
        if _RESTORED in message:
            return None
        if found := _FAILED.search(message):
            if at is not None and _epoch(str(at)) < since - slack:
                return None  # an earlier outage's
            return found.group(1).strip()
    return None


def _epoch(ts: str) -> float:
    """Epoch seconds of a log line's ``ts`` (``2026-12-05T01:09:35.123Z``; an older gamead's
    ``2026-12-03T08:39:34+0000`` too); +inf when unreadable or without an offset (not ruled out)."""
    try:
        at = datetime.fromisoformat(ts.replace("Z", "+00:00"))
        return at.timestamp() if at.tzinfo is not None else float("inf")
    except ValueError:
        return float("inf")


async def each_interval(step: Callable[[], Awaitable[None]], stop: asyncio.Event, every: float, what: str) -> None:
    """``step()`` every ``every`` s until ``stop`` is set: the loop of ``gamead up``'s watches. A step that raises is
    logged (``what``: the watch's name) and the next one runs, so a watch outlives any bad step. Never raises (but
    :class:`asyncio.CancelledError`)."""
    while not stop.is_set():
        try:
            await step()
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - the watch must outlive any one bad step
            logging.getLogger(__name__).exception("%s: a step failed", what)
        try:
            await asyncio.wait_for(stop.wait(), timeout=every)
        except TimeoutError:
            pass


__all__ = ["ANSWER_TIMEOUT", "MAX_ASKS", "Answer", "ask", "each_interval", "heartbeat_error", "liveness_client"]
