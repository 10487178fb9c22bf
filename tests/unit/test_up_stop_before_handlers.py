"""A stop asked in the moment between the end of ``gamead up``'s start and its supervisor's own handlers (its
terminal closing, a SIGHUP, as the hints are printed) is said and counted as the signal that asked it
(hangup57): before, it was taken as a SIGTERM, so a SIGHUP's stop said ``again to hurry`` and one Ctrl-C hurried
it (README "Stopping": a SIGHUP never counts as the first). Found by tests/integration/test_up_terminal.py on a
loaded machine (2 of its 5 cases: the terminal closed right at the "Press Ctrl-C" line).

The real :func:`~gamead_cli.commands.up_supervise.supervise` on a real (empty) stack: no NATS connection (no
autoscaler, no recovery), no child; the stop asked before it runs, as :func:`.up_signals.request_stop` asks it."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest

from gamead_cli import first_signals
from gamead_cli.commands.up_signals import stop_requested
from gamead_cli.commands.up_stack import UpStack
from gamead_cli.commands.up_supervise import supervise
from gamead_core.config import GameadSettings
from gamead_core.datadir import DataDir
from gamead_core.scaling.local import LocalScaler


@pytest.mark.parametrize(("asked", "words"), [
    (signal.SIGHUP, "Ctrl-C or SIGTERM twice to hurry"), (signal.SIGTERM, "again to hurry"),
    (signal.SIGINT, "again to hurry")], ids=["SIGHUP", "SIGTERM", "Ctrl-C"])
def test_a_stop_asked_before_the_supervisors_handlers_is_the_signals_own(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], asked: int, words: str) -> None:
    settings = GameadSettings(embedded={"data_dir": str(tmp_path)}, worker={"drain_timeout": 1})
    stack = UpStack(settings, DataDir(tmp_path))
    scaler = LocalScaler(stack.sup, argv=lambda wid: ["true"], env={}, log_dir=tmp_path, drain_timeout=1)
    scaling = settings.autoscaler.model_copy(update={"backend": "none", "min_replicas": 0, "max_replicas": 1})
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    phase, stopped = dict(first_signals.PHASE), dict(first_signals.STOPPED)
    try:
        first_signals.none_yet()
        first_signals.take(asked)  # as request_stop notes it, before supervise's handlers are on
        stop_requested.set()
        asyncio.run(asyncio.wait_for(supervise(settings, scaling, "nats://127.0.0.1:1", scaler, stack, False,
                                               recovery=False), 60))
    finally:
        stop_requested.clear()
        first_signals.PHASE.update(phase)
        first_signals.STOPPED.update(stopped)
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    said = capsys.readouterr()
    assert f"stopping: workers drain first (up to 1s; {words}; all of it within" in said.err + said.out
