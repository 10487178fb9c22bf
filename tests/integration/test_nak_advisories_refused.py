"""A worker whose NATS user may not subscribe to nats-server's nak advisories says so in its own words, once
(review41b F2). nats-py's ``subscribe`` never raises for a subscription the server refuses: the refusal is an
``-ERR 'Permissions Violation for Subscription to …'`` that comes later, to the error callback, so
:meth:`~gamead_core.worker.naks_seen.NaksSeen.start`'s "said once" line was never written (only the connection's
generic error line, which says nothing of what the worker loses), and nats-py sent the refused subscription again
at each reconnection."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nats
import pytest

from gamead_core.embedded import EmbeddedNats
from gamead_core.worker.naks_seen import NaksSeen

class _AdvisoriesDenied(EmbeddedNats):
    """A nats-server whose user ``worker`` may publish anything and subscribe to anything but ``$JS.EVENT.>``."""

    def _write_config(self) -> Path:
        conf = super()._write_config()
        conf.write_text(conf.read_text() + "authorization {\n  users = [\n    {user: worker, password: worker, "
                        'permissions: {subscribe: {allow: ">", deny: ["$JS.EVENT.>"]}}}\n  ]\n}\n')
        return conf


async def _quiet(_exc: Exception) -> None:
    """nats-py's error callback: the refusal is this test's doing."""


def _subs_after_start(server: EmbeddedNats, url: str, timeout: float, caplog: pytest.LogCaptureFixture,
                      done: Callable[[Any], bool] = lambda nc: True) -> int:
    """Start a :class:`NaksSeen` on a connection to ``url`` (``timeout``: its start's wait), wait (10 s at most) until
    ``done(nc)``, and return the subscriptions nats-py still holds; the server stopped after."""

    async def run() -> int:
        nc = await nats.connect(url, error_cb=_quiet)
        try:
            await NaksSeen().start(nc, timeout=timeout)
            deadline = asyncio.get_running_loop().time() + 10
            while not done(nc):
                assert asyncio.get_running_loop().time() < deadline, "no line within 10 s"
                await asyncio.sleep(0.05)
            return len(nc._subs)
        finally:
            await nc.close()

    try:
        with caplog.at_level(logging.WARNING, logger="gamead_core.worker.runtime"):
            return asyncio.run(run())
    finally:
        server.stop()


def _said_once_and_dropped(server: EmbeddedNats, caplog: pytest.LogCaptureFixture) -> None:
    """A worker on ``server`` (user ``worker``, refused the advisories) says it once, naming the refusal, and drops
    the subscription (nats-server's -ERR may come after the flush's PONG: looked at again until said and dropped)."""

    def said() -> list[str]:
        return [r.getMessage() for r in caplog.records if "nak advisories" in r.getMessage()]

    subs = _subs_after_start(server, f"nats://worker:worker@{server.host}:{server.port}", 1.0, caplog,
                             lambda nc: bool(said()) and not nc._subs)
    assert len(said()) == 1 and "permissions violation" in said()[0].lower(), said()
    assert subs == 0


def test_a_refused_nak_advisory_subscription_is_said_in_the_workers_words(tmp_path: Path,
                                                                        caplog: pytest.LogCaptureFixture) -> None:
    """With the fix: one WARNING 'could not subscribe to nats-server's nak advisories' naming the refusal, and the
    subscription dropped (nats-py no longer holds it to send again). Without: no such line (0 of 1), the
    subscription kept."""
    _said_once_and_dropped(_AdvisoriesDenied(tmp_path / "nats").start(), caplog)


def test_an_allowed_nak_advisory_subscription_says_nothing(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The usual case: subscribed, no line, the subscription kept."""
    server = EmbeddedNats(tmp_path / "nats").start()
    subs = _subs_after_start(server, f"nats://{server.host}:{server.port}", 5.0, caplog)
    assert not [r for r in caplog.records if "nak advisories" in r.getMessage()] and subs == 1


class _LeastPrivilege(EmbeddedNats):
    """A nats-server whose user ``worker`` may publish only what a worker needs (``$JS.API.>``, ``$JS.ACK.>``,
    ``ads.>``) and subscribe to anything but ``$JS.EVENT.>``."""

    def _write_config(self) -> Path:
        conf = super()._write_config()
        conf.write_text(conf.read_text() + "authorization {\n  users = [\n    {user: worker, password: worker, "
                        'permissions: {publish: {allow: ["$JS.API.>", "$JS.ACK.>", "ads.>"]}, '
                        'subscribe: {allow: ">", deny: ["$JS.EVENT.>"]}}}\n  ]\n}\n')
        return conf


def test_a_least_privilege_user_s_refusal_is_said_too(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """review42c F1: small42 made the start's barrier a message to the connection's own inbox; a user that may
    publish only what a worker needs is refused that publish, whose ``-ERR`` overwrote the subscription's in the
    connection's last error: no line, the refused subscription kept (sent again at each reconnection). Back to the
    flush and the second look: said once, dropped. With the barrier: 'no line within 10 s' (1 failed)."""
    _said_once_and_dropped(_LeastPrivilege(tmp_path / "nats").start(), caplog)
