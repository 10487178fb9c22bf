"""The API node's link to NATS: connected in the background, so the node starts (and answers 503 with a
clear code) even while NATS is down, and recovers on its own when NATS returns.
"""

from __future__ import annotations

import asyncio
import logging

from nats.aio.client import Client as NATS
from nats.js import JetStreamContext

from gamead_core.config import GameadSettings
from gamead_core.dlq_ops import DlqOps
from gamead_core.errors import GameadError, QueueUnavailable
from gamead_core.intake import Intake
from gamead_core.queue.connection import connect
from gamead_core.queue.dlq import DeadLetters
from gamead_core.queue.topology import ensure_topology, topology_present
from gamead_core.store.ads import AdStore

log = logging.getLogger(__name__)


class QueueLink:
    """Owns the NATS connection of one API node and the services built on it."""

    def __init__(self, settings: GameadSettings, nats_url: str) -> None:
        self.settings = settings
        self.url = nats_url
        self.nc: NATS | None = None
        self.js: JetStreamContext | None = None
        self._store: AdStore | None = None
        self._intake: Intake | None = None
        self._dlq: DeadLetters | None = None
        self._ops: DlqOps | None = None
        self.last_error: str | None = "connecting"
        self._task: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()

    async def start(self, wait: float = 5.0) -> None:
        """Start connecting; wait up to ``wait`` seconds for the first connection, then carry on."""
        self._task = asyncio.create_task(self._connect_forever())
        try:
            await asyncio.wait_for(asyncio.shield(self.ready.wait()), wait)
        except asyncio.TimeoutError:
            log.warning("NATS not reachable at %s yet (%s); serving 503 until it is", self.url, self.last_error)

    async def _connect_forever(self) -> None:
        while True:
            try:
                nc = await connect(self.settings.nats, self.url, name="gamead-api")
                js = nc.jetstream(timeout=self.settings.nats.request_timeout)
                await ensure_topology(js, self.settings)
                store = await AdStore.open(nc, js)
            except GameadError as exc:
                self.last_error = exc.message
                await asyncio.sleep(1.0)
                continue
            except Exception as exc:  # noqa: BLE001 - keep trying; say why on /readyz and in the log
                self.last_error = repr(exc)
                log.exception("cannot set up the queue link; retrying")
                await asyncio.sleep(1.0)
                continue
            self.nc, self.js, self._store = nc, js, store
            self._intake = Intake(js, store, publish_timeout=self.settings.api.publish_timeout)
            self._dlq = DeadLetters(js)
            self._ops = DlqOps(js, store, self._dlq, publish_timeout=self.settings.api.publish_timeout)
            self.last_error = None
            self.ready.set()
            log.info("connected to NATS at %s", self.url)
            return

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
        if self.nc is not None and not self.nc.is_closed:
            try:
                await asyncio.wait_for(self.nc.drain(), 5)
            except Exception:  # noqa: BLE001
                await self.nc.close()

    def _check(self) -> None:
        if self.nc is None or not self.nc.is_connected:
            reason = self.last_error or "reconnecting"
            raise QueueUnavailable(f"the queue (NATS at {self.url}) is unavailable: {reason}")

    @property
    def intake(self) -> Intake:
        self._check()
        assert self._intake is not None
        return self._intake

    @property
    def store(self) -> AdStore:
        self._check()
        assert self._store is not None
        return self._store

    @property
    def dlq(self) -> DeadLetters:
        self._check()
        assert self._dlq is not None
        return self._dlq

    @property
    def ops(self) -> DlqOps:
        self._check()
        assert self._ops is not None
        return self._ops

    async def readiness(self) -> dict[str, str]:
        """Named checks for ``/readyz``: ``ok`` or the reason it is not."""
        if self.nc is None or not self.nc.is_connected:
            return {"nats": f"unavailable: {self.last_error or 'reconnecting'}", "topology": "unknown"}
        assert self.js is not None
        present = await topology_present(self.js)
        return {"nats": "ok", "topology": "ok" if present else "missing stream or consumers"}
