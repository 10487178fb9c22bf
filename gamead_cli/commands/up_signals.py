"""``gamead up``'s stop signals (SIGINT, SIGTERM, SIGHUP): a flag while the stack starts (a stop must not tear
a start apart), and the handlers installed for them."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from typing import Any

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class _StopRequested(Exception):
    """A stop signal arrived while the stack was starting."""


#: set by SIGINT / SIGTERM / SIGHUP. Signals set a flag, never raise: a stop must not tear a start apart.
_stop_requested = threading.Event()


def _request_stop(signum: int, frame: object) -> None:
    _stop_requested.set()


def _check_stop() -> None:
    if _stop_requested.is_set():
        raise _StopRequested


def _install(handler: Callable[[int, Any], None]) -> None:
    for sig in _STOP_SIGNALS:
        signal.signal(sig, handler)
