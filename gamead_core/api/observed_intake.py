"""The API node's submit path with the outcome of each write told to the storage probe, a "no responders" from a
stream that exists answered as a leader election (:func:`gamead_core.api.leaderless.leaderless`), and every submit
refused at once while the store is known failing, but a trial (:mod:`gamead_core.api.storage_gate`, outage38)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from gamead_core.api.leaderless import leaderless
from gamead_core.api.storage_gate import REPEAT_READ, StorageFailing, StorageGate
from gamead_core.errors import GameadError, QueueUnavailable, StorageFailed
from gamead_core.intake import Accepted, Intake, Queued
from gamead_core.queue.topology import TopologyReport

if TYPE_CHECKING:
    from gamead_core.api.state import QueueLink

Charge = Callable[[], Awaitable[None]]  #: takes a request's rate-limit token (raises 429)


class ObservedIntake:
    """The submit path, with the outcome of each write told to the storage probe (see
    :meth:`gamead_core.queue.storage.StorageProbe.observe_write`)."""

    def __init__(self, intake: Intake, link: QueueLink) -> None:
        self._intake = intake
        self._link = link
        self._replicated = link.settings.queue.replicas > 1  #: can a stream be without a leader for a while?
        self.gate = StorageGate(self._refusing)

    def _refusing(self) -> str | None:
        storage = self._link.storage
        return storage.refusing() if storage is not None else None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._intake, name)

    async def submit(self, *args: Any, charge: Charge | None = None, **kwargs: Any) -> Accepted:
        """:meth:`Intake.submit` (same arguments), its outcome told to the storage probe; a "no responders"
        from a stream that exists is answered as a leader election (:func:`leaderless`). Raises
        :class:`StorageFailing` at once, nothing sent, while the store is known failing and this is not the trial;
        a keyed one's repeat is answered then all the same (:meth:`_repeat_only`). ``charge``: takes the request's
        rate-limit token when the middleware left it to the route (:func:`gamead_core.api.records_gate.take_token`;
        may raise 429), awaited once the gate let the submit through, before anything is written (a refusal
        spends none: left39a), or after a repeat was answered (nothing written) or when ``refuse`` is given."""
        keyed = (args[1] if len(args) > 1 else kwargs.get("idempotency_key")) is not None
        try:
            trial = self.gate.enter(count=not keyed)
        except StorageFailing as refused:
            if not keyed:
                raise
            return await self._repeat_only(refused, args, kwargs, charge)
        try:
            if charge is not None and kwargs.get("refuse") is None:
                await charge()
            accepted = await self._intake.submit(*args, **kwargs)
        except QueueUnavailable as exc:
            self._observe_failure(exc)
            if (out := leaderless(exc, self._report(), replicated=self._replicated)) is not exc:
                raise out from exc.__cause__
            raise
        finally:
            if trial:
                self.gate.leave()
        if charge is not None and kwargs.get("refuse") is not None:
            await charge()  # a repeat answered (a new ad was refused: never here)
        if (storage := self._link.storage) is not None and not accepted.duplicate:
            storage.observe_write(None)
        return accepted

    async def _repeat_only(self, refused: StorageFailing, args: tuple[Any, ...], kwargs: dict[str, Any],
                           charge: Charge | None) -> Accepted:
        """A keyed submit the gate refused: a repeat of a key whose ad is queued is answered from its record (a
        read, nothing written; left39a); a new ad is ``refused`` (nothing sent), and so is a repeat whose record
        cannot be read within :data:`~gamead_core.api.storage_gate.REPEAT_READ` seconds (the store may be frozen:
        never the publish timeout). An ad of another body under the key is 422 as ever."""
        try:
            async with asyncio.timeout(REPEAT_READ):
                accepted = await self._intake.submit(*args, **(kwargs | {"refuse": refused}))
        except (QueueUnavailable, TimeoutError) as exc:
            self.gate.count(1)
            raise refused from (None if exc is refused else exc)
        if charge is not None:
            await charge()
        return accepted

    async def submit_many(self, *args: Any, **kwargs: Any) -> list[Queued | GameadError]:
        """:meth:`Intake.submit_many` (same arguments), its outcome told to the storage probe as a single
        submit's is (an unanswered write marks storage failing, a stored ad clears it: attack29c F9, a full disk
        met by batches left the node ready and its log silent), each ad's "no responders" from a stream that
        exists answered as a leader election (:func:`leaderless`). While the store is known failing every ad is
        :class:`StorageFailing` in its place, nothing sent, but for a trial: then its first ad alone is sent."""
        ads, *rest = args
        try:
            trial = self.gate.enter(len(ads))
        except StorageFailing as exc:
            return [exc] * len(ads)
        if trial:
            try:
                tried = await self._submit_many(ads[:1], *rest, **kwargs)
            finally:
                self.gate.leave()
            return tried + self.gate.refuse(len(ads) - 1)
        return await self._submit_many(ads, *rest, **kwargs)

    async def _submit_many(self, *args: Any, **kwargs: Any) -> list[Queued | GameadError]:
        results = await self._intake.submit_many(*args, **kwargs)
        if self._link.storage is not None and any(isinstance(r, Queued) and not r.duplicate for r in results):
            self._link.storage.observe_write(None)  # an ad stored: writes work (review29b F5: not one slow one)
        elif failed := next((r for r in results if isinstance(r, QueueUnavailable) and self._unanswered(r)), None):
            self._observe_failure(failed)
        report = self._report()
        return [leaderless(r, report, replicated=self._replicated) if isinstance(r, GameadError) else r
                for r in results]

    @staticmethod
    def _unanswered(exc: QueueUnavailable) -> bool:
        """An explicit storage refusal (StorageFailed) is server-wide and the probe sees it too; a write JetStream
        did not answer may be this stream's own write error (a full disk)."""
        return not isinstance(exc, (StorageFailed, StorageFailing)) and "did not answer in time" in exc.message

    def _observe_failure(self, exc: QueueUnavailable) -> None:
        storage, nc = self._link.storage, self._link.nc
        if storage is not None and self._unanswered(exc) and nc is not None and nc.is_connected:
            storage.observe_write(exc)

    def _report(self) -> TopologyReport | None:
        watch = self._link.watch
        return watch.report if watch is not None else None
