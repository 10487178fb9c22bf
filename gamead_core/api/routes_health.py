"""Liveness and readiness probes (Kubernetes ``livenessProbe`` / ``readinessProbe``). Both answer from memory, but
for the one round trip ``/healthz`` makes before it calls NATS silent (the silence may be this process's own pause).

* ``GET /healthz`` — 200 ``{"status": "ok", "nats": {…}}`` while the process is alive, its NATS client's read
  loop runs and NATS answered a round trip (a JetStream API request) within ``api.nats_unhealthy_after``
  seconds; else 503 ``nats_unreachable``, so Kubernetes restarts a node that is cut off from NATS for good (a
  restart re-creates the connection from scratch). ``nats`` holds ``readerAlive``, ``unsentBytes`` (bytes
  waiting to be sent, bounded by ``nats.max_pending_bytes``), ``maxPendingBytes`` and
  ``secondsWithoutContact``. While NATS refuses the node's credentials (``Authorization Violation``, after it
  had connected) it stays 200, ``refused`` saying so, until the refusal has lasted ``nats.refused_exit_after``
  (the node then exits 5; 0: never), then 503 saying so (:mod:`gamead_core.queue.refusal`; review26 F3: a
  liveness probe must not restart a fleet over a brief refusal). ``/readyz`` is 503 from the first refusal.
  A client nats-py closed for good on another server error (``Maximum Payload Violation``, …): 503 at once,
  ``NATS closed the connection: <error>`` (the node exits 3; :mod:`gamead_core.queue.closed`).
* ``GET /readyz`` — 200 when every hard check is ``ok`` or ``degraded: …``; else 503 ``not_ready``.
  Checks: ``nats`` (connected), ``topology`` (the work stream and the ad bucket usable; other objects
  ``degraded`` while missing or incompatible), ``storage`` (the last probe write was stored), ``redis``
  (soft: ``degraded`` never makes the node unready), ``registry`` (soft: ``degraded: writes refused …`` while
  this node's heartbeat, a write to the registry bucket, fails: :meth:`BeatHealth.readiness` says why it stays
  ready), ``clock`` (``waiting: …`` until the node's first heartbeat sampled nats-server's clock, a moment after
  NATS is reached: :func:`_clock_check`), ``reads`` (soft: ``degraded: …`` while the operator reads' own connection,
  ``gamead-api-reads``, is not connected or not answering: those reads fail meanwhile, submits go on;
  :meth:`gamead_core.api.read_conn.ReadConnection.readiness`). ``repairs`` lists objects the node recreated in the
  last ten minutes. ``differs`` (once the node has checked its topology; ``[]`` when none) lists each limit the
  fleet shares whose live value differs from this node's own setting, one line each, starting with the setting
  (``queue.ack_wait: live 30 s on consumers …, this node's 10 s``: :func:`gamead_core.queue.limit_rule.summarize`),
  as ``/v1/stats`` ``topology.differs``: ``gamead up`` names them on its console. No check names a server or a
  URL: each says what failed (``degraded: timed out (circuit open)``), and any host, port or URL an error text
  held reads ``a server`` (:func:`gamead_core.redact.without_servers`).
"""

from __future__ import annotations

import time

from fastapi import APIRouter, Request
from starlette.responses import Response

from gamead_core.api.responses import json_response as _json
from gamead_core.api.schemas import Health, Readiness
from gamead_core.clock import CLOCK
from gamead_core.queue.closed import closed_text
from gamead_core.queue.liveness import round_trip
from gamead_core.queue.refusal import lasting, refusal_text
from gamead_core.redact import without_servers
from gamead_core.telemetry.tracing import export_readiness

router = APIRouter()


@router.get("/healthz", summary="Liveness: the process answers and has reached NATS recently",
            response_model=Health,
            responses={503: {"model": Health, "description": "`unhealthy`: NATS has not answered for "
                                                             "`api.nats_unhealthy_after` (`nats_unreachable`)"}})
async def healthz(request: Request) -> Response:
    link = getattr(request.app.state, "link", None)
    limit = request.app.state.settings.api.nats_unhealthy_after
    silent = link.seconds_without_contact() if link is not None else 0.0
    if silent > limit and link is not None and link.nc is not None and link.nc.is_connected:
        # asked again before NATS is judged silent: the silence may be this process's own pause (SIGSTOP, a
        # suspended VM: newcomer33 F4), in which its loop made no round trip; one answered now ends it. At most
        # 1 s: a probe's own timeout (Kubernetes' default 1 s, gamead up's 2 s) must not pass while NATS is away
        wait = min(request.app.state.settings.nats.request_timeout, 1.0)
        if await round_trip(link.nc.jetstream(timeout=wait)):
            link.last_contact = time.monotonic()
        silent = link.seconds_without_contact()
    figures = link.connection_figures() if link is not None else None
    dead = link is not None and link.reader_dead()
    refused = refusal_text(link.nc) if link is not None else None
    lasted = link is not None and lasting(link.nc, request.app.state.settings.nats)  # the process exits 5 now
    closed = closed_text(link.nc) if link is not None else None  # nats-py closed it for good: exits 3 now
    if closed is None and not dead and ((refused is None and silent <= limit) or (refused is not None and not lasted)):
        return _json({"status": "ok", "nats": figures} | ({"refused": refused} if refused else {}))
    if closed is not None:
        message = f"{closed}; nats-py does not reconnect it: this process exits (a restart connects again)"
    elif refused is not None:
        message = f"{refused}; this process exits after nats.refused_exit_after (a restart meets the same refusal)"
    elif dead:  # connected, yet nothing reads the socket: no answer can come (the guard reconnects it)
        message = "the NATS client's read loop has died; it is being reconnected"
    else:
        message = (f"NATS has not answered for {silent:.0f} s (api.nats_unhealthy_after = {limit:g} s); "
                   "restarting this process reconnects it from scratch")
    return _json({"status": "unhealthy", "nats": figures,
                  "error": {"code": "nats_unreachable", "message": message,
                            "details": {"secondsWithoutNats": round(silent, 1), "unhealthyAfterSeconds": limit,
                                        "readerAlive": not dead}}},
                 503)


#: checks that report but never make the node unready (Redis down = degraded, still serving; spans not exported)
_SOFT_CHECKS = frozenset({"redis", "registry", "reads", "tracing"})


def _clock_check(beat_done: bool) -> str:
    """``/readyz``'s ``clock``: ``ok`` once this node sampled nats-server's clock (its first heartbeat: every time
    it stamps is nats-server's from then on, :mod:`gamead_core.clock`); unready while its first heartbeat is on its
    way, so no load balancer sends it an ad it would stamp on its host clock (attack33a F11, review33 R4);
    ``degraded`` (still ready) when a heartbeat was answered (``beat_done``: refused, or stored but its stamp not
    read back) without a sample, which must not keep the node unready."""
    if CLOCK.offset is not None:
        return "ok"
    if beat_done:
        return ("degraded: nats-server's clock not sampled (registry write refused or not read back): times are "
                "this host's")
    return "waiting: nats-server's clock not sampled yet (the node's first heartbeat)"


def _passes(name: str, value: str) -> bool:
    return value == "ok" or value.startswith("degraded") or name in _SOFT_CHECKS


@router.get("/readyz", summary="Readiness: NATS reachable, JetStream topology usable, storage writable",
            response_model=Readiness,
            responses={503: {"model": Readiness, "description": "`unready`, with `error` (`not_ready`) and "
                                                                "`Retry-After`"}})
async def readyz(request: Request) -> Response:
    link = request.app.state.link
    checks = link.readiness()
    redis = request.app.state.redis
    checks["redis"] = "disabled" if redis is None else redis.status()
    checks["tracing"] = export_readiness()  # soft: spans the exporter could not send (attack45 F6)
    if (reads := getattr(link, "reads", None)) is not None:  # soft: the submit path does not use it (read_conn)
        checks["reads"] = reads.readiness(request.app.state.settings.nats.stale_after)
    if (beat := getattr(request.app.state, "beat_health", None)) is not None:
        checks["registry"] = beat.readiness(time.monotonic())  # degraded at worst: see BeatHealth.readiness
        checks["clock"] = _clock_check(beat.failing or beat.puts > 0)
    checks = {name: without_servers(text) for name, text in checks.items()}  # what failed, never where
    ready = all(_passes(k, v) for k, v in checks.items())
    degraded = ready and any(v.startswith("degraded") for v in checks.values())
    body: dict[str, object] = {"status": "degraded" if degraded else "ready" if ready else "unready",
                               "checks": checks}
    if repairs := link.recent_repairs():
        body["repairs"] = repairs
    if (watch := getattr(link, "watch", None)) is not None and watch.report is not None:
        body["differs"] = list(watch.report.drift_lines())  # [] once checked: each setting whose live value rules
    if not ready:
        failing = "; ".join(f"{k}: {v}" for k, v in checks.items() if not _passes(k, v))
        body["error"] = {"code": "not_ready", "message": failing, "details": checks}
    return _json(body, 200 if ready else 503, None if ready else {"Retry-After": "2"})
