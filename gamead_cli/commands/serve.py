"""Run the HTTP API (one stateless node; run many behind a load balancer).

While NATS is away it serves 503 (queue_unavailable; /readyz not ready, /healthz failing after
api.nats_unhealthy_after) and keeps trying, logging the URL and the error every few seconds. With
--give-up-after S (nats.give_up_after) it first waits up to S seconds for NATS, then exits with code 3.

Example: gamead serve --port 8080 --nats-url nats://127.0.0.1:4222
"""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated

import typer
import uvicorn

from gamead_cli import first_signals
from gamead_cli.options import ConfigOpt, GiveUpAfterOpt, settings_from
from gamead_cli.runtime import reach_nats, require_nats_url
from gamead_core import collector
from gamead_core.api.acceptor import AcceptingServer
from gamead_core.api.app import create_app
from gamead_core.api.auth import check_serve_safety
from gamead_core.api.forwarded import ForwardedFor
from gamead_core.api.http_limits import HttpLimits
from gamead_core.api.protocol import bounded_protocol
from gamead_core.fd_limit import connection_bound, raise_nofile
from gamead_core.listen import bind_listener
from gamead_core.logs import setup_logging
from gamead_core.queue.preflight import refuse_partition_change
from gamead_core.telemetry.tracing import check_tracing_env

log = logging.getLogger("gamead_core.api")


def serve(
    config: ConfigOpt = None,
    host: Annotated[str | None, typer.Option(help="Bind address \\[api.host, default 127.0.0.1].")] = None,
    port: Annotated[int | None, typer.Option(help="Port \\[api.port, default 8080].")] = None,
    nats_url: Annotated[str | None, typer.Option("--nats-url", help="NATS server URL \\[nats.url].")] = None,
    give_up_after: GiveUpAfterOpt = None,
) -> None:
    nofile = raise_nofile()  # first: the soft open-files limit up to the hard one (Go's runtime and nginx do it too)
    settings = settings_from(config, api={"host": host, "port": port},
                             nats={"url": nats_url, "give_up_after": give_up_after})
    check_serve_safety(settings)  # no open API on a network address by accident
    check_tracing_env()  # an OTLP endpoint no exporter could send to: one line, exit 5, before anything starts
    url = require_nats_url(settings, "serve")
    setup_logging(settings.log, role="api")
    # the port first, before NATS or the app: a taken api.port is one line and exit 5, with nothing started to stop
    # (uvicorn binds only after the app's start-up, and its shutdown after a failed bind hung for ever)
    listener = bind_listener(settings.api.host, settings.api.port, "api.port")
    if not settings.api.port:  # 0: a free one; from here on the one taken (its log line, its /metrics URL)
        taken = settings.api.model_copy(update={"port": listener.getsockname()[1]})
        settings = settings.model_copy(update={"api": taken})
    redis_pool = settings.redis.max_connections if settings.redis.url else 0
    max_connections, line, low = connection_bound(nofile, settings.api.max_connections, redis_pool)
    if settings.nats.give_up_after:  # wait for NATS, then exit 3: for a supervisor that wants to know
        asyncio.run(reach_nats(settings, url, role="api"))
    refuse_partition_change(settings, url)  # queue.partitions against a live queue: one line, exit 5
    # said once the start goes on: a start refused above is its one line alone
    (log.warning if low else log.info)(line, extra={"max_connections": max_connections, "nofile": nofile})
    app = create_app(settings, url)
    collector.tune()  # start-up is done: out of every later collection, and fewer collections (issue 14)
    server = AcceptingServer(  # accept() failing for want of a descriptor: logged, room made (api.acceptor)
        uvicorn.Config(
            ForwardedFor(app),  # X-Forwarded-For of a trusted peer, addresses only (uvicorn's took any text)
            host=settings.api.host,
            port=settings.api.port,
            loop="uvloop",
            # httptools with bounded heads, a read timeout and JSON refusals (api.max_* and api.*_timeout)
            # and at most max_connections connections (api.max_connections: gamead_core.api.conn_cap)
            http=bounded_protocol(HttpLimits.from_settings(settings.api, max_connections)),
            lifespan="on",
            access_log=False,
            proxy_headers=False,  # ForwardedFor instead (attack31b F6)
            log_config=None,
            timeout_graceful_shutdown=10,
            timeout_keep_alive=settings.api.keep_alive_timeout,
            server_header=False,
            date_header=False,  # AcceptingServer writes Date from nats-server's clock (gamead_core.clock)
        )
    )
    app.state.stop_serving = lambda: setattr(server, "should_exit", True)  # credentials refused: see below
    first_signals.handed_over()  # SIGTERM, SIGHUP, Ctrl-C: the server's own handlers (AcceptingServer) from now on
    try:
        server.run(sockets=[listener])
    finally:
        listener.close()
    if (refused := getattr(app.state, "refused", None)) is not None:  # refused: exit 5; NATS closed it: 3
        raise refused
    if not server.started:
        raise typer.Exit(1)
