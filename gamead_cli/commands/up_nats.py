"""The first start of ``gamead up``'s embedded nats-server: on the ports of its settings, or on ports ``up``
picks itself (``embedded.nats_port`` / ``embedded.nats_monitor_port`` 0), as child ``nats-server`` of its
supervisor, waited for until it listens."""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial

from gamead_cli.commands.up_liveness import MONITOR_PURPOSE, nats_argv
from gamead_cli.commands.up_stack import NATS_CHILD
from gamead_cli.commands.up_start import NATS_READY_TIMEOUT
from gamead_core.embedded import ANY_PORT, EmbeddedNats, wait_for_listener
from gamead_core.port_claims import PortClaims
from gamead_core.supervisor import Child, Supervisor

#: what the claim of the embedded nats-server's client port says it is for (:class:`PortClaims`)
CLIENT_PURPOSE = "its embedded nats-server"


def start_nats(sup: Supervisor, embedded: EmbeddedNats, claims: PortClaims, env: dict[str, str], *,
               timeout: float = NATS_READY_TIMEOUT, pick: Callable[[str, str], int] | None = None) -> Child:
    """Start ``embedded`` as ``sup``'s child ``nats-server`` (its argv from :func:`.up_liveness.nats_argv`, its
    environment ``env``) and wait up to ``timeout`` s until that child itself listens on ``embedded.port``.
    A ``port`` 0 and a ``monitor_port`` :data:`~gamead_core.embedded.ANY_PORT` are picked here, claimed for this
    stack (``pick(host, purpose)``: :meth:`PortClaims.pick` by default). Returns the child. Raises
    :class:`~gamead_core.errors.ConfigError` for a port that is taken and
    :class:`~gamead_core.errors.QueueUnavailable` if the server exits or does not listen in time."""
    pick = pick or claims.pick
    if not embedded.port:
        embedded.port = pick(embedded.host, CLIENT_PURPOSE)
    if embedded.monitor_port == ANY_PORT:
        embedded.monitor_port = pick("127.0.0.1", MONITOR_PURPOSE)
    embedded.prepare()
    child = sup.start(NATS_CHILD, partial(nats_argv, embedded, claims), env, embedded.log_path)
    assert child.proc is not None
    wait_for_listener(embedded.host, embedded.port, child.proc, time.monotonic() + timeout, embedded.log_path)
    return child
