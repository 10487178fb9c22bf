"""Process plumbing shared by the long-running commands: settings → logging → NATS URL → signals."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable

from gamead_core.config import GameadSettings
from gamead_core.errors import ConfigError


def require_nats_url(settings: GameadSettings) -> str:
    """The NATS URL a serve/worker process must use; only ``gamead up`` runs an embedded server."""
    if not settings.nats.url:
        raise ConfigError(
            "nats.url is not set: point it at your NATS server (--nats-url, GAMEAD_NATS__URL or config.yaml), "
            "or run `gamead up`, which starts an embedded one"
        )
    return settings.nats.url


def install_stop_signals(stop: asyncio.Event, on_second: Callable[[], None] | None = None) -> None:
    """SIGTERM/SIGINT set ``stop``; a second signal calls ``on_second`` (e.g. skip the drain)."""
    loop = asyncio.get_running_loop()
    seen = {"n": 0}

    def handler() -> None:
        seen["n"] += 1
        stop.set()
        if seen["n"] > 1 and on_second is not None:
            on_second()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, handler)
