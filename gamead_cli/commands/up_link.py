"""``gamead up``'s own NATS connection (the supervisor's: its autoscaler, its liveness probe, the recovery of what a
dead worker held), connected again when NATS closes it for good.

nats-py closes a client for good, with no reconnect, on a server ``-ERR`` such as ``Maximum Payload Violation``
(:mod:`gamead_core.queue.closed`). ``gamead worker`` and ``gamead serve`` then exit 3 and ``gamead up`` restarts
them (README "Restarts": every child that dies is restarted; the stack never dies of a child's refusal). Its own
connection was left closed for good (fix56c): every dead worker's ads went unrecovered (``could not recover what
worker local-1 held: NATS is unavailable: ConnectionClosedError``) and the autoscaler said ``cannot observe the
queue`` for ever. Now, as for its children, ``gamead up`` connects again: one WARNING line when NATS closed it,
naming the server's error, new connections with a back-off (0.5 s doubled up to 30 s while each closes within
:data:`STEADY` s), and one line when it is back; the autoscaler and the liveness probe start again on it, and a
dead worker's recovery waits for it (its ads handed over then, or after ``queue.ack_wait`` by NATS)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from rich.markup import escape

from gamead_cli.commands.up_console import say
from gamead_core.config import GameadSettings
from gamead_core.queue.closed import CLOSED, server_error
from gamead_core.queue.refusal import REFUSED, CredentialsRefused, is_refusal
from gamead_core.scaling.policy import retry_delay
from gamead_core.scaling.retry import wait_any
from gamead_core.shutdown import close_for_good, closed_by_us
from gamead_core.stop_bound import given_up, within

#: seconds a connection must have lasted for its close to start the back-off again from 0.5 s
STEADY = 30.0


class UpLink:
    """The current NATS connection of ``gamead up`` (the :class:`gamead_core.scaling.deps.Link` shape: ``nc``,
    ``js``, ``ready``); ``lost`` is set once NATS closed it for good (not gamead: a stop's close)."""

    def __init__(self, settings: GameadSettings, url: str) -> None:
        self.settings, self.url = settings, url
        self.nc: Any = None
        self.js: Any = None
        self.ready = asyncio.Event()
        self.lost = asyncio.Event()

    def connecting(self, again: bool = False) -> Awaitable[Any]:
        """nats-py's connect to ``url`` (for ever while the server is down), its close for good noticed. ``again``
        (a connect after NATS closed the last one): a refusal of the credentials (``Authorization Violation``, a
        token rotated by a config reload) ends it at once with :class:`CredentialsRefused` (:data:`REFUSED`), for
        :meth:`keep` to say and retry with its back-off; else nats-py went on every 0.5 s, refused, in silence."""
        import nats

        from gamead_core.queue.connection import connect_options

        made: list[Any] = []
        refused = asyncio.Event()

        async def _error(exc: Exception) -> None:  # else nats-py tries again; the autoscaler reports failures
            if again and not made and is_refusal(exc):
                refused.set()

        async def _closed() -> None:
            await self._gone(made[0] if made else None)

        async def _connect() -> Any:
            task = asyncio.ensure_future(nats.connect(**connect_options(self.settings.nats, self.url,
                                                                         name="gamead-up supervisor"),
                                                      error_cb=_error, closed_cb=_closed))
            refusal, gave_up = asyncio.ensure_future(refused.wait()), False
            try:
                await asyncio.wait({task, refusal}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                refusal.cancel()
                if not task.done():  # refused, or this connect cancelled (a stop): a late client closed, bounded
                    gave_up = True
                    await given_up(task, close_for_good, "a refused NATS connect of gamead up")
            if gave_up:
                raise CredentialsRefused(REFUSED)
            made.append(task.result())  # what nats-py raised, raised
            return made[0]

        return _connect()

    async def _gone(self, nc: Any) -> None:
        """``nc`` was closed (its ``closed_cb``, or the guard that saw it closed): lost if it is the current
        connection and gamead did not close it. Takes a second call."""
        if nc is not None and nc is self.nc and not closed_by_us(nc):
            self.ready.clear()
            self.lost.set()

    def use(self, nc: Any) -> None:
        """Make ``nc`` (connected) the current connection, guarded as every role's is."""
        from gamead_core.queue.liveness import guard_writes
        from gamead_core.queue.reader_guard import guard_reader

        # a dead read loop reconnected, a stopped server left, a close nats-py did not call closed_cb for taken
        guard_reader(nc, self.settings.nats.stale_after, partial(self._gone, nc))
        guard_writes(nc, self.settings.nats.max_pending_bytes)  # its own writes too (leases, recoveries, probe)
        self.nc, self.js = nc, nc.jetstream(timeout=self.settings.nats.request_timeout)
        self.lost.clear()
        self.ready.set()

    def recovering(self, recover: Callable[..., Awaitable[object]],
                   stop: asyncio.Event) -> Callable[[str, int, bool], Awaitable[object]]:
        """``recover(nc, js, worker_id=, pid=, registered=)`` on the current connection, for
        :meth:`~gamead_core.scaling.local.LocalScaler.attach_recovery`: while NATS has closed it and it is not back
        yet, the recovery waits for the new one (None once ``stop`` is set first); one that NATS closed meanwhile
        is made again on the next."""
        async def _recover(worker_id: str, pid: int, registered: bool) -> object:
            while True:
                if not self.ready.is_set():
                    await wait_any(self.ready, stop, timeout=None)
                    if not self.ready.is_set():
                        return None
                nc = self.nc
                report = await recover(nc, self.js, worker_id=worker_id, pid=pid, registered=registered)
                if not nc.is_closed or closed_by_us(nc):
                    return report

        return _recover

    async def keep(self, stop: asyncio.Event, start: Callable[[asyncio.Event], list[asyncio.Task[None]]],
                   step: float, connect: Callable[[Awaitable[Any]], Awaitable[Any]]) -> None:
        """Until ``stop``: ``start(ended)`` the tasks that use the connection (they end once ``ended`` is set, each
        awaited ``step`` s at most: :func:`~gamead_core.stop_bound.within`); when NATS closed it for good, say so,
        connect again (``connect(self.connecting())``: None once ``stop`` is set) with the back-off, say when it
        is back, and start them again on it."""
        loop = asyncio.get_running_loop()
        attempt = 0
        while True:
            since = loop.time()
            ended = asyncio.Event()
            tasks = start(ended)
            await wait_any(stop, self.lost, timeout=None)
            ended.set()
            for task in tasks:
                await within(task, step, "a task of gamead up's NATS connection")
            if stop.is_set() or self.nc is None:
                return
            attempt = 1 if loop.time() - since >= STEADY else attempt + 1
            lost_at, what = loop.time(), f"{CLOSED}: {server_error(self.nc.last_error)}"
            say(f"[yellow]![/] {escape(what)} of gamead up itself (its autoscaler, liveness probe and recovery of "
                f"dead workers' ads); connecting again in {retry_delay(attempt):.1f}s")
            nc = None
            while nc is None and not stop.is_set():
                await wait_any(stop, timeout=retry_delay(attempt))
                if stop.is_set():
                    return
                try:
                    nc = await connect(self.connecting(again=True))
                except Exception as exc:  # noqa: BLE001 - a refusal or error of the new connect: tried again
                    attempt += 1
                    say(f"[yellow]![/] gamead up cannot connect to NATS again yet ({escape(server_error(exc))}); "
                        f"retrying in {retry_delay(attempt):.1f}s")
            if nc is None:
                return
            self.use(nc)
            say(f"[green]✓[/] gamead up is connected to NATS again, {loop.time() - lost_at:.1f}s after NATS closed "
                f"its connection ({escape(what)})")
