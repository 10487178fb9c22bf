"""Run a worker: pull ads by priority (with aging), analyse them, record the results.

SIGTERM/SIGINT stop pulling, finish in-flight ads within worker.drain_timeout and hand back the rest;
a second signal hands back at once.

Until NATS takes a connection it keeps trying, logging a WARNING with the URL, the error and when it gives up
every few seconds; with --give-up-after S (nats.give_up_after) it exits with code 3 after S seconds.

Example: gamead worker --concurrency 8 --nats-url nats://127.0.0.1:4222
"""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated

import typer
import uvloop

from gamead_cli.options import ConfigOpt, GiveUpAfterOpt, settings_from
from gamead_cli.runtime import install_stop_signals, reach_nats, require_nats_url, run_until_stopped
from gamead_core import collector
from gamead_core.fd_limit import low_nofile_words, raise_nofile
from gamead_core.ids import WORKER_ID_RULE, is_worker_id
from gamead_core.listen import bind_listener
from gamead_core.logs import node_fields, setup_logging
from gamead_core.stop_bound import worker_bound
from gamead_core.telemetry.tracing import check_tracing_env, setup_tracing, shutdown_tracing
from gamead_core.worker.runtime import Worker


def worker(
    config: ConfigOpt = None,
    concurrency: Annotated[
        int | None, typer.Option("--concurrency", "-n", min=1, max=1024, help="Ads analysed at once (1-1024) \\[worker.concurrency].")
    ] = None,
    nats_url: Annotated[str | None, typer.Option("--nats-url", help="NATS server URL \\[nats.url].")] = None,
    worker_id: Annotated[str | None, typer.Option("--id", help="Worker id (default host-pid-random).")] = None,
    metrics_port: Annotated[
        int | None, typer.Option("--metrics-port", min=0, max=65535,
                                 help="Serve Prometheus /metrics on this port, 0 = off \\[worker.metrics_port].")
    ] = None,
    give_up_after: GiveUpAfterOpt = None,
    dead_pid: Annotated[int | None, typer.Option("--after-pid", min=1, hidden=True, help=(
        "gamead up's own: the pid of this id's previous worker, which it reaped; its registry entry is taken over "
        "at once, not after the claim's watch."))] = None,
) -> None:
    nofile = raise_nofile()  # first: the soft open-files limit up to the hard one (Go's runtime and nginx do it too)
    if worker_id is not None and not is_worker_id(worker_id):  # it is written into DLQ entries an export carries
        raise typer.BadParameter(f"{worker_id[:40]!r} is not a worker id ({WORKER_ID_RULE})", param_hint="--id")
    settings = settings_from(config, worker={"concurrency": concurrency, "metrics_port": metrics_port},
                             nats={"url": nats_url, "give_up_after": give_up_after})
    url = require_nats_url(settings)
    check_tracing_env()  # an OTLP endpoint no exporter could send to: one line, exit 5, before NATS
    if settings.worker.metrics_port and settings.metrics.enabled:  # a taken port: one line, exit 5, before NATS
        bind_listener(settings.worker.metrics_host, settings.worker.metrics_port, "worker.metrics_port").close()
    setup_logging(settings.log, role="worker")
    if low := low_nofile_words(nofile):  # said at start: each ad, NATS and Redis connection and scrape is a descriptor
        logging.getLogger("gamead_core.worker").warning("worker: %s", low, extra={"nofile": nofile})
    setup_tracing("worker")  # only when OTEL_* variables ask for traces
    runtime = Worker(settings, url, worker_id=worker_id, dead_pid=dead_pid)
    node_fields(worker_id=runtime.id)  # every line of this worker names it (a task's or an extra's own id wins)
    collector.tune()  # start-up is done: out of every later collection, and fewer collections (issue 14)

    async def main() -> None:
        stop = asyncio.Event()
        collector.start_sweeps()  # a burst's garbage freed and its heap given back within a sweep (attack38b F6)
        install_stop_signals(stop, runtime.hand_back_now, bound=worker_bound(settings.worker.drain_timeout))
        # /metrics first, on this loop, so a liveness probe reads it while NATS is awaited (attack39b F7); then NATS:
        # a clear line while it is away, exit 3 after nats.give_up_after; a stop meanwhile ends it
        serving = await runtime.metrics.serve(settings, runtime.id)
        try:
            await run_until_stopped(reach_nats(settings, url, role="worker", stop=stop), stop, started=lambda: False)
            if not stop.is_set():
                await run_until_stopped(runtime.run(stop), stop, started=lambda: runtime.connected)
        finally:
            await runtime.metrics.stop_serving(serving)  # the run stopped it already, unless NATS never came

    try:
        uvloop.run(main())
    finally:
        shutdown_tracing()
