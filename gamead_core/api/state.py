"""The API node's link to NATS: connected in the background, so the node starts (and answers 503 with a
clear code) even while NATS is down, and recovers on its own when NATS returns. A refusal of its configuration
at the set-up (``queue.partitions`` against the work streams, a refused ``queue.repartition``, credentials) is
not that: it ends the start, exit 5 (:meth:`QueueLink._refuse`).

Once connected, the probes read from memory what these find:

* the topology watch (:mod:`gamead_core.queue.watch`): recreates a missing stream, consumer or bucket;
* the storage probe (:mod:`gamead_core.queue.storage`): does JetStream still store writes? (``/readyz``);
* the server's answers: the guard of every connection (:func:`gamead_core.queue.reader_guard.check_answers`) PINGs
  the server it is on every second; ``/readyz``'s nats check fails while a PING waits longer than half of
  ``nats.stale_after``, and the connection is left for another server past it;
* the contact check: a JetStream API round trip (:func:`gamead_core.queue.liveness.round_trip`; never
  ``flush(timeout)``, which can kill nats-py's read loop) every few seconds; ``/healthz`` fails when NATS has
  not answered for ``api.nats_unhealthy_after`` seconds, so Kubernetes restarts a node cut off for good, and
  at once while the client's read loop is dead (the guard of every connection reconnects it within a second).

Every use of the connection (:meth:`QueueLink._check`) answers 503 ``queue_unavailable`` at once while the
reader is dead or more than ``nats.max_pending_bytes`` wait to be sent (a stalled server), never buffering more.
Operator reads that stream a whole bucket go on a connection of their own (:mod:`gamead_core.api.read_conn`); submits'
writes linger (:mod:`gamead_core.queue.write_linger`). Nothing here puts a URL or credentials in front of a client
(``/readyz`` and errors say what is wrong, not where); logs: URLs only through :func:`gamead_core.redact.redact_url`."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable
from typing import Any

from nats.aio.client import Client as NATS
from nats.js import JetStreamContext

from gamead_core.api.observed_intake import ObservedIntake
from gamead_core.api.read_conn import ReadConnection
from gamead_core.config import GameadSettings
from gamead_core.dlq_ops import DlqOps
from gamead_core.errors import (ConfigError, GameadError, PartitionsChanged, QueueUnavailable, TopologyChanged,
                                TopologyError, TopologyMissing, error_text)
from gamead_core.intake import Intake
from gamead_core.queue.atomic import atomic_wanted
from gamead_core.queue.connection import connect
from gamead_core.queue.liveness import check_outbound, outbound_excess, round_trip, unsent_bytes
from gamead_core.queue.reader_guard import reader_alive, unanswered_for
from gamead_core.queue.closed import closed_text
from gamead_core.queue.refusal import RefusedNow, refusal_text
from gamead_core.queue.dlq import DeadLetters
from gamead_core.queue.storage import StorageProbe
from gamead_core.queue.topology import TopologyReport
from gamead_core.queue.watch import TopologyWatch
from gamead_core.queue.write_check import purge_checks, writes_stored
from gamead_core.queue.write_linger import linger_writes
from gamead_core.redact import redact_url
from gamead_core.registry import api_incarnation, new_api_node_id
from gamead_core.shutdown import close_connection
from gamead_core.stop_bound import ended
from gamead_core.store.ads import AdStore
from gamead_core.worker.orphans import reaper_reach

log = logging.getLogger(__name__)


class QueueLink:
    """Owns the NATS connection of one API node and the services built on it."""

    def __init__(self, settings: GameadSettings, nats_url: str, *, node_id: str | None = None,
                 on_refused: Callable[[GameadError], None] | None = None) -> None:
        self.settings = settings
        self.url = nats_url
        self.node_id = node_id or new_api_node_id()
        self.started = time.time()  #: epoch seconds: with node_id, this process's incarnation (its heartbeat's too)
        self.nc: NATS | None = None
        self.js: JetStreamContext | None = None
        self.reads = ReadConnection(settings.nats, nats_url)  #: the operator reads' own connection (api.read_conn)
        self.ad_store: AdStore | None = None  #: as set up, unchecked (the cache's scope); serve through store
        self._intake: Intake | None = None
        self._observed: ObservedIntake | None = None
        #: the last topology report looked at, and its first essential incompatibility (None: none): a report
        #: is replaced, never changed, so its verdict is worked out once, not on every submit (issue 14.4)
        self._verdict: tuple[TopologyReport | None, str | None] = (None, None)
        self._dlq: DeadLetters | None = None
        self._ops: DlqOps | None = None
        self.watch: TopologyWatch | None = None
        self.storage: StorageProbe | None = None
        #: why NATS is unavailable, for logs and operator read-outs (``/v1/stats``): URLs redacted
        self.last_error: str | None = "connecting"
        #: the refusal that ended the start (:meth:`_connect_forever`); None while it goes on or went well
        self.refused: GameadError | None = None
        self._on_refused = on_refused
        self._setting_up: NATS | None = None  #: connected, the set-up not done yet (NATS answers: not "connecting")
        self._task: asyncio.Task[None] | None = None
        self._loops: list[asyncio.Task[None]] = []
        self._stop = asyncio.Event()
        self.ready = asyncio.Event()
        #: monotonic time NATS last answered a round trip (the start counts, so a node gets a grace period)
        self.last_contact = time.monotonic()

    async def start(self, wait: float = 5.0) -> None:
        """Start connecting; wait up to ``wait`` seconds for the first connection, then carry on (a refusal
        ends the start at once: :attr:`refused`, ``on_refused``)."""
        self._task = asyncio.create_task(self._connect_forever(), name="gamead-nats-link")
        ready = asyncio.ensure_future(self.ready.wait())
        try:
            await asyncio.wait({ready, asyncio.shield(self._task)}, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ready.cancel()
        if self.ready.is_set() or self.refused is not None:
            return
        if self._setting_up is not None and self._setting_up.is_connected:  # NATS answers: say what is wrong
            log.warning("connected to NATS at %s, but the queue link is not set up yet (%s); serving 503 until it "
                        "is", redact_url(self.url), self.last_error)
        else:
            log.warning("NATS not reachable at %s yet (%s); serving 503 until it is", redact_url(self.url),
                        self.last_error)

    def _refuse(self, exc: GameadError) -> None:
        """End the start with ``exc``: a configuration that cannot work here (``queue.partitions`` against the
        work streams, a ``queue.repartition`` refused for a queue holding ads, credentials NATS refuses, a TLS
        file it cannot use). Final, as at ``gamead serve``'s pre-check (exit 5, one line): trying again would
        only change the queue later under a live fleet (attack28b F2), never make the configuration right."""
        self.refused, self.last_error = exc, exc.message
        if self._on_refused is not None:
            self._on_refused(exc)

    async def _connect_forever(self) -> None:
        """Connect and set up (topology check, stores, probes), retrying every second what NATS may fix by
        itself (away, JetStream not answering); a :class:`ConfigError` (:meth:`_refuse`) ends it. One topology
        watch for every try, so what it logs is said once, not once a try."""
        nc: NATS | None = None
        watch: TopologyWatch | None = None
        while True:
            try:
                if nc is None:
                    nc = linger_writes(await connect(self.settings.nats, self.url, name="gamead-api",  # submits' writes
                                                     on_reconnect=self._reconnected), self.settings.api.write_linger_ms)
                    self._setting_up = nc
                await self.reads.open()  # the operator reads' connection (gamead_core.api.read_conn)
                js = nc.jetstream(timeout=self.settings.nats.request_timeout)
                if watch is None:
                    watch = TopologyWatch(js, self.settings, interval=self.settings.api.topology_check_interval)
                await watch.check_once(startup=True)  # creates, updates limits, reports; never overwrites
                store = await AdStore.open(nc, js)
                store.origin, store.reads = api_incarnation(self.node_id, self.started), self.reads.js  # Gamead-Origin
                watch.on_report = lambda report, s=store: s.follow(report.made_at)  # its scope follows the bucket
            except GameadError as exc:
                if isinstance(exc, ConfigError):  # credentials NATS refuses (connect), queue.partitions (the check)…
                    self._setting_up = None
                    await asyncio.gather(close_connection(nc), self.reads.close())
                    self._refuse(exc)
                    return
                self.last_error = exc.message
                await asyncio.sleep(1.0)
                continue
            except Exception as exc:  # noqa: BLE001 - keep trying; say why on /readyz and in the log
                self.last_error = error_text(exc, limit=300)  # what, not only its class (rcA)
                log.exception("cannot set up the queue link; retrying")
                await asyncio.sleep(1.0)
                continue
            self.nc, self.js, self.ad_store, self.watch = nc, js, store, watch
            self._intake = Intake(js, store, publish_timeout=self.settings.api.publish_timeout,
                                  partitions=self.settings.queue.partitions,
                                  atomic_batches=atomic_wanted(self.settings.api.batch_atomic,
                                                               self.settings.queue.replicas),
                                  reaper_reach=reaper_reach(self.settings))
            bound = self.settings.nats.max_pending_bytes  # settling retries respect the outbound bound too
            self._intake.unsettled.held = lambda: outbound_excess(nc, bound) is not None
            self._intake.unsettled.repartitioned, self._intake.unsettled.stream_missing = watch.mismatch_now, watch.poke
            self._observed = ObservedIntake(self._intake, self)
            self._dlq = DeadLetters(js, reads=self.reads.js)
            self._ops = DlqOps(js, store, self._dlq, publish_timeout=self.settings.api.publish_timeout,
                               partitions=self.settings.queue.partitions)
            timeout, partitions = self.settings.nats.request_timeout, self.settings.queue.partitions
            self.storage = StorageProbe(js, self.node_id, interval=self.settings.api.storage_probe_interval,
                                        timeout=timeout, on_failure=self._probe_failed,
                                        write_check=functools.partial(writes_stored, js, partitions, timeout),
                                        purge_checks=functools.partial(purge_checks, js, partitions))
            self.last_error = None
            self.last_contact = time.monotonic()
            self._loops = [
                asyncio.create_task(watch.run(self._stop), name="gamead-topology-watch"),
                asyncio.create_task(self.storage.run(self._stop), name="gamead-storage-probe"),
                asyncio.create_task(self._keep_contact(nc), name="gamead-nats-contact"),
            ]
            self.ready.set()
            log.info("connected to NATS at %s", redact_url(self.url))
            return

    def _reconnected(self) -> None:
        # Not contact: a connection the server closes again at once (e.g. a message it refuses, re-sent on
        # every reconnect) reconnects over and over; only a PING/PONG round trip counts (_keep_contact).
        if self.storage is not None:
            self.storage.reconnected()

    def _probe_failed(self, error: GameadError) -> None:
        if isinstance(error, TopologyMissing) or "no stream" in error.message:
            if self.watch is not None:
                self.watch.poke()  # the probe's own bucket may be gone: let the watch recreate it now

    async def _keep_contact(self, nc: NATS) -> None:
        """Record every answered round trip (:func:`~gamead_core.queue.liveness.round_trip`, a JetStream API
        request: never ``flush(timeout)``, which can kill nats-py's read loop) in :attr:`last_contact`. A
        connection whose read loop died is reconnected by the guard :func:`connect` put on it
        (:func:`~gamead_core.queue.reader_guard.guard_reader`); meanwhile its round trips go unanswered."""
        every = max(0.5, min(5.0, self.settings.api.nats_unhealthy_after / 4))
        probe = nc.jetstream(timeout=self.settings.nats.request_timeout)
        while not self._stop.is_set():
            if nc.is_connected and reader_alive(nc) and await round_trip(probe):
                self.last_contact = time.monotonic()
            try:
                await asyncio.wait_for(self._stop.wait(), every)
            except asyncio.TimeoutError:
                pass

    async def settle_writes(self) -> None:
        """The last round of the ambiguous submits not settled yet (:meth:`gamead_core.unsettled.Unsettled.close`,
        bounded); what is left stays counted by :meth:`unsettled_count`."""
        if self._intake is not None:
            await self._intake.unsettled.close()

    def unsettled_count(self) -> int:
        """Ambiguous submits this node has not settled (0 before NATS was reached)."""
        return len(self._intake.unsettled) if self._intake is not None else 0

    async def stop(self) -> None:
        """Stop the loops and close the connection: drained (at most 5 s) when NATS is there, closed at once
        when it is away (a drain could only wait for a server that is not coming back in time). Bounded,
        and quiet: nothing left running, nothing logged above debug."""
        self._stop.set()
        tasks = [t for t in (self._task, *self._loops) if t is not None]
        await ended(tasks, 1.0, "the NATS link's loops")  # cancelled again if a NATS await took the cancel (hang50)
        if self._intake is not None:  # ambiguous submits not settled yet are the doctor's
            await self._intake.unsettled.close()
        await asyncio.gather(close_connection(self.nc or self._setting_up), self.reads.close())  # or one being set up

    def _check(self) -> None:
        if self.nc is None or not self.nc.is_connected or not reader_alive(self.nc):
            # The message is for logs (the URL redacted); clients see QueueUnavailable.client_message.
            if (refused := refusal_text(self.nc) or closed_text(self.nc)) is not None:  # no URL: told to clients
                raise RefusedNow(refused)
            reason = self.last_error or "reconnecting"
            raise QueueUnavailable(f"NATS at {redact_url(self.url)} is unavailable: {reason}")
        check_outbound(self.nc, self.settings.nats.max_pending_bytes)  # stalled: 503 now, not more buffering
        if self._intake is not None and self._intake.unsettled.full:  # a new write could go unsettled: 503
            raise QueueUnavailable(f"NATS is not taking writes: {len(self._intake.unsettled)} ambiguous submits "
                                   "are still being settled")

    def check_partitions(self) -> None:
        """Raise :class:`TopologyChanged` while the topology watch finds the work streams repartitioned under
        this node: anything it publishes (a submit, a replay, a repair) would go by the wrong modulus."""
        if self.watch is not None and self.watch.mismatch is not None:
            raise TopologyChanged(f"this API node takes no submit: {self.watch.mismatch.stale_node()}")

    @property
    def intake(self) -> Intake:
        """The submit path (writes observed by the storage probe)."""
        self._check()
        self.check_partitions()
        report = self.watch.report if self.watch is not None else None
        if report is not None:  # never publish into a stream we cannot use
            seen, unusable = self._verdict
            if report is not seen:
                found = report.essential_incompatible
                unusable = f"the JetStream topology is not usable: {found[0].detail}" if found else None
                self._verdict = (report, unusable)
            if unusable is not None:
                raise TopologyError(unusable)
        assert self._observed is not None
        return self._observed  # type: ignore[return-value]

    @property
    def store(self) -> AdStore:
        self._check()
        assert self.ad_store is not None
        return self.ad_store

    @property
    def dlq(self) -> DeadLetters:
        self._check()
        assert self._dlq is not None
        return self._dlq

    @property
    def ops(self) -> DlqOps:
        self._check()
        self.check_partitions()
        assert self._ops is not None
        return self._ops

    def poke_storage_probe(self) -> None:
        """A write of this node failed: probe storage now rather than at the next tick."""
        if self.storage is not None:
            self.storage.poke()

    # --- probes (from memory, no I/O) ---------------------------------------------------------------------------

    def seconds_without_contact(self) -> float:
        """Seconds since NATS last answered a round trip (or since the process started)."""
        return time.monotonic() - self.last_contact

    def reader_dead(self) -> bool:
        """True while the client says connected but its read loop has ended (nothing it sends is answered)."""
        return self.nc is not None and not reader_alive(self.nc)

    def connection_figures(self) -> dict[str, Any]:
        """What ``/healthz`` shows of the connection: ``readerAlive`` (bool), ``unsentBytes`` (bytes waiting to
        be sent: nats-py's pending buffer + the socket's), ``maxPendingBytes`` (``nats.max_pending_bytes``),
        ``secondsWithoutContact`` (seconds since NATS last answered a round trip)."""
        return {"readerAlive": not self.reader_dead(), "unsentBytes": unsent_bytes(self.nc),
                "maxPendingBytes": self.settings.nats.max_pending_bytes,
                "secondsWithoutContact": round(self.seconds_without_contact(), 1)}

    def readiness(self) -> dict[str, str]:
        """Named checks for ``/readyz``: ``ok``, ``degraded: …`` (reported, still ready) or why not. No URLs."""
        if (refused := self.refused) is not None:  # the start was refused: the process is ending (exit 5)
            topology = isinstance(refused, PartitionsChanged)  # else: the connection's (credentials, TLS)
            return {"nats": "ok" if topology else f"unavailable: {refused.message}",
                    "topology": f"failing: {refused.message}" if topology else "unknown", "storage": "unknown"}
        if self.nc is None and self._setting_up is not None and self._setting_up.is_connected:
            return {"nats": "ok", "topology": f"unknown: not set up yet ({self.last_error})", "storage": "unknown"}
        if self.nc is None or not self.nc.is_connected or self.reader_dead():
            since, state = self.seconds_without_contact(), "connecting" if self.nc is None else "reconnecting"
            state = refusal_text(self.nc) or closed_text(self.nc) or f"{state} (no answer for {since:.0f} s)"
            return {"nats": f"unavailable: {state}", "topology": "unknown", "storage": "unknown"}
        if (waiting := outbound_excess(self.nc, self.settings.nats.max_pending_bytes)) is not None:
            return {"nats": f"unavailable: not taking writes ({waiting:,} bytes wait to be sent, "
                            f"nats.max_pending_bytes = {self.settings.nats.max_pending_bytes:,})",
                    "topology": "unknown", "storage": "unknown"}
        if (silent := unanswered_for(self.nc)) >= self.settings.nats.stale_after / 2:
            return {"nats": f"unavailable: the server does not answer (a PING unanswered for {silent:.1f} s; left "
                            f"for another server after nats.stale_after = {self.settings.nats.stale_after:g} s)",
                    "topology": "unknown", "storage": "unknown"}
        return {
            "nats": "ok",
            "topology": self.watch.readiness() if self.watch else "unknown",
            "storage": self.storage.readiness() if self.storage else "unknown",
        }

    def recent_repairs(self) -> list[dict[str, Any]]:
        return self.watch.recent_repairs() if self.watch else []

    def topology_status(self) -> dict[str, Any] | None:
        """The ``topology`` section of ``/v1/stats`` (None before the first connection)."""
        return self.watch.status() if self.watch else None

    def storage_status(self) -> dict[str, Any] | None:
        """The ``storage`` section of ``/v1/stats`` (None before the first connection)."""
        return self.storage.status() if self.storage else None
