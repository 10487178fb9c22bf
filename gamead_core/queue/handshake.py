"""A NATS reconnect counts only once the server has answered its handshake's PING.

nats-py 2.16's handshake (``Client._process_connect_init``) writes CONNECT and PING, then reads one line for the
PONG. A connection closed there (a proxy, a firewall or a server that drops the client at its CONNECT) reads
``b""``: neither PONG nor ``-ERR``, so the handshake "succeeds". nats-py then counts a reconnect
(``stats["reconnects"]``), says connected (``is_connected``) until its read loop meets the EOF, and tries again.
Measured (load59B: a client whose every reconnect is closed at its CONNECT, 6 s): 10 "reconnects", and
``/readyz``'s ``reads`` check and ``/v1/stats`` ``nats.reads`` said ``ok`` / connected for moments while every
operator read failed. :func:`pong_required` makes such a handshake fail as the EOF it is: nats-py tries again
(``nats.reconnect_time_wait``), counts no reconnect and never says connected.
"""

from __future__ import annotations

import nats.errors
from nats.aio.client import Client as NATS


def pong_required(nc: NATS) -> None:
    """From now on a handshake of ``nc`` (each reconnect's) that read the connection's end where the PONG should be
    raises ``nats.errors.UnexpectedEOF`` (the read loop and PING task it started cancelled), which nats-py's
    reconnect loop takes as a failed attempt."""
    handshake = nc._process_connect_init  # noqa: SLF001 - nats-py has no hook between the PONG and "connected"

    async def answered() -> None:
        await handshake()
        transport = nc._transport  # noqa: SLF001
        # no PONG (it alone sets CONNECTED), and the socket at its end: what was read was the EOF (another line, an
        # INFO a cluster sends as it changes, is followed by the PONG, which the read loop takes: as nats-py does)
        if nc._status != NATS.CONNECTED and (transport is None or transport.at_eof()):  # noqa: SLF001
            for task in (nc._reading_task, nc._ping_interval_task):  # noqa: SLF001 - started for a dead socket
                if task is not None:
                    task.cancel()
            raise nats.errors.UnexpectedEOF

    nc._process_connect_init = answered  # type: ignore[method-assign]  # noqa: SLF001


__all__ = ["pong_required"]
