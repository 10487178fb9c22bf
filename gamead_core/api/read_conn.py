"""The API node's second NATS connection, for operator reads that stream a whole stream or bucket: ``GET /ads``
(``api.list_scans`` at once), ``GET /v1/jobs``, the DLQ's reads (``GET /v1/dlq``, a DLQ action's selection), the
audit trail's reads and ``GET /v1/doctor`` (lists38; attack38b F8).

Why a connection of their own: nats-server pushes an ordered consumer's messages into the client's socket up to
its flow-control window (``JsFlowControlMaxPending``, 32 MiB a consumer, nats-server ``server/consumer.go``) before
the client has read any, and a socket is read in order. On the one connection of the submit path, a submit's
publish ack and the answers to the node's PINGs came behind the scans' records while nats-py read and parsed them,
and past nats-server's ``max_pending`` (64 MiB unsent to one client) the server closed the connection as a slow
consumer (``"gamead-api" - Slow Consumer Detected: MaxPending of 67108864 Exceeded``), losing every ack in flight.
Measured (lists38, 4 scans at once of 40,000 records, submits at 200/s): 3,740-3,880 of 4,000 submits accepted, the
rest 503 ``queue_unavailable`` ("NATS did not answer in time"), ``/readyz`` unready, a lone submit's answer up to
3.5 s; the drill (attack38b F8, 170,000 records): outages up to 9.1 s. On its own connection a scan's data waits
in its own socket and a slow consumer there closes only it; the submit path's answers come on the main one, read by
its own read loop between two of the scans' reads (nats-py reads a socket 64 KiB at a time). Several big scans at once
still closed this connection (left39a: 4 DLQ searches and 2 listings, 32 MiB pushed to each); each read now asks for
its messages a slice at a time, at most 16 MiB asked for on the connection (:mod:`gamead_core.queue.pull_feed`).

The connection is made by :func:`gamead_core.queue.connection.connect` like the main one (the same guards: a PING a
second, a dead read loop reconnected, writes refused past ``nats.max_pending_bytes``), reconnects on its own, and is
closed with the node. Reads go through it (and the doctor's probe writes: a run's whole connection is this one);
every other write of the node, the submit path's first, stays on the main connection. A read while it is away
fails as a read on the main one would: 503 ``queue_unavailable`` (the NATS boundary's translation).

Its state is ``/readyz``'s ``reads`` check (:meth:`ReadConnection.readiness`; left39a: before, a reads connection
closed as a slow consumer and reconnecting left operator reads failing while ``/readyz`` said ``ok``): soft, as
``redis`` and ``registry`` (the submit path never uses it, so a node whose reads connection is down still takes
ads: ``degraded: …``, never unready), and ``/v1/stats`` ``nats.reads`` (:meth:`ReadConnection.status`).
"""

from __future__ import annotations

from nats.aio.client import Client as NATS
from nats.js import JetStreamContext

from gamead_core.config import NatsSettings
from gamead_core.queue.closed import closed_text
from gamead_core.queue.connection import connect
from gamead_core.queue.reader_guard import reader_alive, unanswered_for
from gamead_core.shutdown import close_connection

NAME = "gamead-api-reads"  #: the connection's name, as nats-server's /connz shows it
#: what a ``reads`` check that is not ``ok`` says follows (its ``degraded: <state>``)
EFFECT = ("operator reads (GET /ads, /v1/jobs, /v1/dlq, /v1/audit, /v1/doctor) answer 503 meanwhile; submits go "
          "on (they use the node's main connection)")


class ReadConnection:
    """The reads connection of one API node: :meth:`open` once the main connection is up, :attr:`js` for the
    reads, :meth:`close` at the end. ``settings``: the ``nats`` section; ``url``: the node's NATS URL(s)."""

    def __init__(self, settings: NatsSettings, url: str) -> None:
        self._settings = settings
        self._url = url
        self.nc: NATS | None = None
        self.js: JetStreamContext | None = None  #: its JetStream context (``nats.request_timeout``); None until open

    async def open(self) -> None:
        """Connect, once (later calls return at once). Raises what :func:`~gamead_core.queue.connection.connect`
        raises: :class:`~gamead_core.errors.NatsUnreachable` (the caller retries), ``ConfigError``."""
        if self.nc is not None:
            return
        self.nc = await connect(self._settings, self._url, name=NAME, quiet=True)  # the main one says a refusal
        self.js = self.nc.jetstream(timeout=self._settings.request_timeout)

    def state(self, stale_after: float) -> str | None:
        """None while the connection is up and answering; else what it is (pure but for reading ``nc``): ``not
        connected yet``, ``closed (…)``, ``reconnecting``, ``its read loop has died``, ``the server does not answer
        (a PING unanswered for S s)`` (half of ``stale_after``, ``nats.stale_after``, as the main connection's)."""
        nc = self.nc
        if nc is None:
            return "not connected yet"
        if (closed := closed_text(nc)) is not None or nc.is_closed:
            return f"closed ({closed or 'by the client'})"
        if not nc.is_connected:
            return "reconnecting"
        if not reader_alive(nc):
            return "its read loop has died (it is being reconnected)"
        if (silent := unanswered_for(nc)) >= stale_after / 2:
            return f"the server does not answer (a PING unanswered for {silent:.1f} s)"
        return None

    def readiness(self, stale_after: float) -> str:
        """``/readyz``'s ``reads``: ``ok``, or ``degraded: <state>: <what follows>`` (:meth:`state`)."""
        state = self.state(stale_after)
        return "ok" if state is None else f"degraded: the operator reads' connection ({NAME}) is {state}: {EFFECT}"

    def status(self, stale_after: float) -> dict[str, object]:
        """``/v1/stats`` ``nats.reads``: ``{"connected": bool, "state": None or as :meth:`state`, "reconnects":
        int}`` (the connection's reconnects since it was opened; a slow consumer closing it counts one)."""
        state = self.state(stale_after)
        stats = getattr(self.nc, "stats", None) or {}
        return {"connected": state is None, "state": state, "reconnects": int(stats.get("reconnects", 0))}

    async def close(self) -> None:
        """Close the connection (bounded, quiet); a later :meth:`open` makes a new one."""
        nc, self.nc, self.js = self.nc, None, None
        await close_connection(nc)
