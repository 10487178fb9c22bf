"""The first start of ``gamead up``'s embedded nats-server: on the ports of its settings, or on ports ``up``
picks itself (``embedded.nats_port`` / ``embedded.nats_monitor_port`` 0), as child ``nats-server`` of its
supervisor, waited for until it listens. A port ``up`` picked is free only when it is looked at: another process
of the machine can take it before nats-server binds it, and then ``up`` picks again (port54: the operator asked
for any port, and ``up`` refused, exit 5, the one it had picked itself)."""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial

from gamead_cli.commands.up_liveness import MONITOR_PURPOSE, move_monitor, nats_argv
from gamead_cli.commands.up_stack import NATS_CHILD, NATS_STOP_TIMEOUT
from gamead_cli.commands.up_start import NATS_READY_TIMEOUT
from gamead_core.embedded import ANY_PORT, EmbeddedNats, port_lost, wait_for_listener
from gamead_core.picked_start import start_picked
from gamead_core.port_claims import PortClaims
from gamead_core.proc import port_free
from gamead_core.supervisor import Child, Supervisor

#: what the claim of the embedded nats-server's client port says it is for (:class:`PortClaims`)
CLIENT_PURPOSE = "its embedded nats-server"


def lost_ports(problem: str, host: str, port: int, monitor_port: int, client_picked: bool) -> tuple[bool, bool]:
    """Whether a start of nats-server that failed with ``problem`` (:func:`~gamead_core.embedded.wait_for_listener`'s
    message, the server's log in it) lost ``(its client port, its monitoring port)`` to another process
    (:func:`~gamead_core.embedded.port_lost`): the client port ``host:port`` only when ``up`` picked it
    (``client_picked``; the operator's own port is refused, never moved), the monitoring port ``127.0.0.1:
    monitor_port`` (0: none) always, as :func:`.up_liveness.nats_argv` moves it. Pure."""
    client = client_picked and port_lost(problem, host, port)
    return client, bool(monitor_port) and port_lost(problem, "127.0.0.1", monitor_port)


def start_nats(sup: Supervisor, embedded: EmbeddedNats, claims: PortClaims, env: dict[str, str], *,
               timeout: float = NATS_READY_TIMEOUT, pick: Callable[[str, str], int] | None = None) -> Child:
    """Start ``embedded`` as ``sup``'s child ``nats-server`` (its argv from :func:`.up_liveness.nats_argv`, its
    environment ``env``) and wait up to ``timeout`` s until that child itself listens on ``embedded.port``.

    A ``port`` 0 and a ``monitor_port`` :data:`~gamead_core.embedded.ANY_PORT` are picked here, claimed for this
    stack (``pick(host, purpose)``: :meth:`PortClaims.pick` by default). A picked client port taken before the
    start is picked again; a start that lost a picked client port or the monitoring port to another process
    (:func:`lost_ports`) is stopped and made again on a new pick (the lost one given back), up to
    :data:`~gamead_core.picked_start.PICKED_STARTS` starts (:func:`~gamead_core.picked_start.start_picked`).
    Returns the child. Raises
    :class:`~gamead_core.errors.ConfigError` for a port of the settings that is taken and
    :class:`~gamead_core.errors.QueueUnavailable` if the server exits, does not listen in time or loses its
    picked ports every time (the child stopped)."""
    pick = pick or claims.pick
    client_picked = not embedded.port
    if client_picked:
        embedded.port = pick(embedded.host, CLIENT_PURPOSE)
    if embedded.monitor_port == ANY_PORT:
        embedded.monitor_port = pick("127.0.0.1", MONITOR_PURPOSE)
    if not client_picked:
        embedded.prepare()  # the operator's port: refused (exit 5) if taken, never moved

    def start() -> Child:
        if client_picked and not port_free(embedded.host, embedded.port):
            embedded.port = _again(embedded.port, embedded.host, pick, claims)
        child = sup.start(NATS_CHILD, partial(nats_argv, embedded, claims), env, embedded.log_path)
        assert child.proc is not None
        return child

    def ready(child: Child) -> None:
        assert child.proc is not None
        wait_for_listener(embedded.host, embedded.port, child.proc, time.monotonic() + timeout, embedded.log_path)

    def repick(problem: str) -> bool:
        client, monitor = lost_ports(problem, embedded.host, embedded.port, embedded.monitor_port, client_picked)
        if client:
            embedded.port = _again(embedded.port, embedded.host, pick, claims)
        if monitor:
            move_monitor(embedded, pick, claims.release)
        return client or monitor

    return start_picked(start, ready, lambda _: sup.stop(NATS_CHILD, NATS_STOP_TIMEOUT), repick)


def _again(lost: int, host: str, pick: Callable[[str, str], int], claims: PortClaims) -> int:
    """A new pick for the client port in place of ``lost`` (taken by another process), which is given back."""
    port = pick(host, CLIENT_PURPOSE)
    claims.release(lost)
    return port
