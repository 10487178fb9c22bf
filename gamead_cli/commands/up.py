"""Run the whole stack on this machine: an embedded nats-server, the API and autoscaled workers.

Workers scale between --workers and --max-workers with the queue; this process owns them and runs the autoscaler.
Workers that die are restarted with a back-off; Ctrl-C stops everything cleanly (workers drain first).
Example: gamead up --workers 2 --max-workers 6 --port 8080
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from types import SimpleNamespace
from pathlib import Path
from typing import Annotated

import httpx
import nats
import nats.errors
import typer
from rich.console import Console

from gamead_cli.options import ConfigOpt, settings_from
from gamead_core.config import GameadSettings
from gamead_core.embedded import EmbeddedNats
from gamead_core.errors import GameadError
from gamead_core.queue.connection import connect_options
from gamead_core.scaling.local import LocalScaler
from gamead_core.scaling.loop import Autoscaler, new_holder_id
from gamead_core.scaling.settings import AutoscalerSettings
from gamead_core.supervisor import Supervisor

console = Console(stderr=True, highlight=False)


def _child_env(settings: GameadSettings, nats_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env["GAMEAD_NATS__URL"] = nats_url
    env["GAMEAD_API__HOST"] = settings.api.host
    env["GAMEAD_API__PORT"] = str(settings.api.port)
    return env


def _gamead(*args: str) -> list[str]:
    return [sys.executable, "-m", "gamead_cli", *args]


def _wait_ready(url: str, sup: Supervisor, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        api = sup.children.get("api")
        if api is not None and not api.alive:
            raise GameadError(f"the API exited during start-up; see {api.log_path}")
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise GameadError(f"the API at {url} was not ready after {timeout:.0f}s")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _show_decision(entry: dict[str, object]) -> None:
    if entry.get("error"):
        console.print(f"[red]![/] autoscaler: {entry['reason']}: {entry['error']}", highlight=False)
    elif entry.get("desired") != entry.get("current"):
        console.print(f"[cyan]↕[/] autoscaler: {entry['reason']}", highlight=False)


async def _autoscale(settings: GameadSettings, scaling: AutoscalerSettings, nats_url: str, scaler: LocalScaler) -> None:
    """Run the autoscaler over ``scaler`` (and the supervisor's restarts) until SIGINT/SIGTERM."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    # nats-py reconnects by itself; the autoscaler reports what fails (no reconnect chatter on the console).
    async def _quiet(exc: Exception) -> None:
        pass

    try:
        nc = await nats.connect(**connect_options(settings.nats, nats_url, name="gamead-up autoscaler"),
                                error_cb=_quiet)
    except (OSError, nats.errors.Error, asyncio.TimeoutError) as exc:
        raise GameadError(f"the autoscaler cannot connect to NATS at {nats_url}: {exc}") from exc
    try:
        link = SimpleNamespace(nc=nc, js=nc.jetstream(timeout=settings.nats.request_timeout), ready=asyncio.Event())
        link.ready.set()
        # a worker that dies has its held ads handed to the others at once (gamead_core.worker.reaper)
        from functools import partial

        from gamead_core.worker.reaper import recover_exited

        scaler.attach_recovery(partial(recover_exited, nc, link.js, settings))
        autoscaler = Autoscaler(
            scaling, link, node_id=new_holder_id("up"), backend=scaler, registry_settings=settings.registry,
            stream_replicas=settings.queue.replicas, request_timeout=settings.nats.request_timeout,
            on_decision=_show_decision,
        )
        task = asyncio.create_task(autoscaler.run(stop))
        while not stop.is_set():
            scaler.poll()  # restart dead workers (and the API) with back-off
            try:
                await asyncio.wait_for(stop.wait(), 0.2)
            except asyncio.TimeoutError:
                pass
        console.print("stopping: workers drain first …")
        await task  # releases the lease
        await scaler.close()  # every worker drains, together with any scale-down still draining
    finally:
        try:
            await asyncio.wait_for(nc.close(), 5)
        except Exception:  # noqa: BLE001 - shutting down anyway
            pass
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def up(
    config: ConfigOpt = None,
    workers: Annotated[
        int, typer.Option("--workers", "-w", min=0, help="Workers to start, and the fewest kept (0 = API only).")
    ] = 1,
    max_workers: Annotated[
        int | None,
        typer.Option("--max-workers", min=1, help="Most workers the autoscaler runs \\[default: max(4, --workers)].",
                     show_default=False),
    ] = None,
    autoscale: Annotated[
        bool, typer.Option("--autoscale/--no-autoscale", help="Scale workers between --workers and --max-workers.")
    ] = True,
    port: Annotated[int | None, typer.Option(help="API port \\[api.port, default 8080].")] = None,
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="NATS data and logs \\[embedded.data_dir, default ./.gamead].")
    ] = None,
    concurrency: Annotated[int | None, typer.Option("--concurrency", "-n", min=1, help="Slots per worker.")] = None,
) -> None:
    settings = settings_from(
        config, api={"port": port}, embedded={"data_dir": data_dir}, worker={"concurrency": concurrency}
    )
    settings.api.host = "127.0.0.1"
    most = max_workers if max_workers is not None else max(4, workers)
    if most < workers:
        raise typer.BadParameter(f"must be at least --workers ({workers})", param_hint="--max-workers")
    autoscaling = autoscale and workers > 0  # from 0 workers no service rate can be measured
    scaling = settings.autoscaler.model_copy(
        update={"backend": "local" if autoscaling else "none", "min_replicas": workers, "max_replicas": most}
    )
    signal.signal(signal.SIGINT, _interrupt)  # also when started in the background, where SIGINT is ignored
    signal.signal(signal.SIGTERM, _interrupt)
    data = settings.embedded.data_dir
    logs = data / "logs"
    nats = None
    if settings.nats.url:
        nats_url = settings.nats.url
        console.print(f"using NATS at {nats_url}")
    else:
        nats = EmbeddedNats(data, port=settings.embedded.nats_port, sync_always=settings.embedded.sync_always).start()
        nats_url = nats.url
        console.print(f"[green]✓[/] nats-server (JetStream) on {nats_url}, data in {data}")
    sup = Supervisor(on_event=lambda msg: console.print(f"[yellow]![/] {msg}"))
    env = _child_env(settings, nats_url)
    # The API shows the autoscaler's state with the same bounds; it never runs local workers itself.
    env["GAMEAD_AUTOSCALER__BACKEND"] = scaling.backend
    env["GAMEAD_AUTOSCALER__MIN_REPLICAS"] = str(scaling.min_replicas)
    env["GAMEAD_AUTOSCALER__MAX_REPLICAS"] = str(scaling.max_replicas)
    if concurrency is not None:
        env["GAMEAD_WORKER__CONCURRENCY"] = str(concurrency)
    if config is not None:
        env["GAMEAD_CONFIG"] = str(Path(config).resolve())
    scaler = LocalScaler(sup, argv=lambda wid: _gamead("worker", "--id", wid), env=env, log_dir=logs,
                         drain_timeout=settings.worker.drain_timeout)
    api_url = f"http://{settings.api.host}:{settings.api.port}"
    try:
        sup.start("api", _gamead("serve"), env, logs / "api.log")
        _wait_ready(api_url, sup, timeout=30)
        console.print(f"[green]✓[/] API on {api_url}  (docs: {api_url}/docs, logs: {logs})")
        scaler.set_replicas(workers)
        if workers:
            console.print(f"[green]✓[/] {workers} worker(s), {settings.worker.concurrency} slot(s) each")
        if autoscaling:
            console.print(f"[green]✓[/] autoscaler: {workers}-{most} workers, every {scaling.interval:g}s "
                          f"(gamead scale status; --no-autoscale keeps {workers})")
        console.print(
            "\nNext, in another terminal:\n"
            f"  gamead submit --title 'Dragon Kingdom' --genre Strategy --cta 'Download Now' --wait\n"
            f"  gamead submit --count 200 --rate 50\n"
            f"  gamead ads list\n"
            f"  gamead scale status\n"
            f"  curl {api_url}/ads/<id>\n"
            "Press Ctrl-C to stop.\n"
        )
        if autoscaling:
            asyncio.run(_autoscale(settings, scaling, nats_url, scaler))
            signal.signal(signal.SIGINT, _interrupt)  # the loop's handlers are gone: stay interruptible
            signal.signal(signal.SIGTERM, _interrupt)
        else:
            while True:
                sup.poll()
                time.sleep(0.2)
    except KeyboardInterrupt:
        console.print("stopping: workers drain first …")
    finally:
        names = [n for n in sup.children if n != "api"]
        sup.stop_many(names, timeout=settings.worker.drain_timeout + 5)
        sup.stop_all(timeout=15)
        if nats is not None:
            nats.stop()
        console.print("[green]✓[/] stopped")
