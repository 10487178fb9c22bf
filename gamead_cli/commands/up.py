"""Run the whole stack on this machine: an embedded nats-server, the API and N workers.

Workers that die are restarted with a back-off; Ctrl-C stops everything cleanly (workers drain first).
Example: gamead up --workers 2 --port 8080
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.console import Console

from gamead_cli.options import ConfigOpt, settings_from
from gamead_core.config import GameadSettings
from gamead_core.embedded import EmbeddedNats
from gamead_core.errors import GameadError
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


def up(
    config: ConfigOpt = None,
    workers: Annotated[int, typer.Option("--workers", "-w", min=0, help="Worker processes (0 = API only).")] = 1,
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
    api_url = f"http://{settings.api.host}:{settings.api.port}"
    try:
        sup.start("api", _gamead("serve"), env, logs / "api.log")
        _wait_ready(api_url, sup, timeout=30)
        console.print(f"[green]✓[/] API on {api_url}  (docs: {api_url}/docs, logs: {logs})")
        for i in range(1, workers + 1):
            sup.start(f"worker-{i}", _gamead("worker", "--id", f"local-{i}"), env, logs / f"worker-{i}.log")
        if workers:
            console.print(f"[green]✓[/] {workers} worker(s), {settings.worker.concurrency} slot(s) each")
        console.print(
            "\nNext, in another terminal:\n"
            f"  gamead submit --title 'Dragon Kingdom' --genre Strategy --cta 'Download Now' --wait\n"
            f"  gamead submit --count 200 --rate 50\n"
            f"  gamead ads list\n"
            f"  curl {api_url}/ads/<id>\n"
            "Press Ctrl-C to stop.\n"
        )
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
