"""A node's clean stop in the registry (:class:`CleanStop`, the part of
:class:`~gamead_core.registry.kv.Registry` that writes and reads it): its entry's delete mark and its note in
``gamead_stops`` (:mod:`gamead_core.registry.stops`), each tried until it lands and never sent twice (reap45), and
whether a node stopped so (the reaper's question, :meth:`CleanStop.stopped`)."""

from __future__ import annotations

import asyncio
import logging

from gamead_core import names
from gamead_core.errors import Conflict, GameadError, TopologyMissing
from gamead_core.registry.nodes import earlier_node_key, incarnation, node_key, same_incarnation
from gamead_core.registry.owner import Ownership
from gamead_core.registry.stops import StopNotes
from gamead_core.registry.wire import NodeInfo

log = logging.getLogger("gamead_core.registry.kv")  # the registry's own logger, as before the split

#: compare-and-set tries of a clean stop's mark over writes landing meanwhile (its own announcements, a late retry)
MARK_TRIES = 3


class CleanStop:
    """Mixed into :class:`~gamead_core.registry.kv.Registry`, whose ``owner``, ``_stops``, ``_stop_landed``,
    ``open``, ``delete``, ``revision`` and ``_last`` it uses."""

    owner: Ownership
    _stops: StopNotes
    _stop_landed: set[tuple[str, str]]

    async def stop(self, info: NodeInfo) -> None:
        """A clean stop of ``info``'s process: its clean-stop note put (:mod:`gamead_core.registry.stops`: what
        tells it from a death after ``registry.ttl``) and its entry deleted, together; what landed is not sent again
        by a later call for that process, so the caller tries again until both land (reap45: a note not written,
        its mark landed, was never tried again: past ``registry.ttl`` the reaper took the stop for a death).
        Raises the delete's gamead error, else the note's (:meth:`stop_unwritten` says which; a note's bucket missing,
        :class:`TopologyMissing`, is said in one INFO line instead, not tried again). Nothing at all once
        another process took the id over: the key is its (:mod:`gamead_core.registry.owner`). From its call on, no
        put or announcement of ``info``'s entry goes out (:meth:`~.owner.Ownership.stopping`)."""
        if self.owner.lost(info.id) is not None:
            return
        self.owner.stopping(info)  # before its mark is sent: no write of the entry after it (reg54)
        me, unwritten = incarnation(info.id, info.pid, info.started_at), self.stop_unwritten(info)

        async def write(part: str) -> None:
            try:
                await (self._mark(info, me) if part == "mark" else self._stops.note(info))
            except TopologyMissing as exc:  # no gamead_stops (an older gamead's topology): not retried, said
                if part == "mark":
                    raise
                log.info("clean stop of %s not noted in %s (told by its registry entry's delete mark alone, for "
                         "registry.ttl): %s", info.id, names.STOPS_BUCKET, exc.message)
            self._stop_landed.add((me, part))

        errors = [r for r in await asyncio.gather(*map(write, unwritten), return_exceptions=True) if r is not None]
        if errors:
            raise errors[0]

    async def _mark(self, info: NodeInfo, me: str) -> None:
        """The delete mark of ``info``'s entry (``me``: its incarnation), a compare-and-set on the key's last write,
        read just before (review45: an unconditional delete answered late, or a retry of it, landed after the id's
        next process had claimed the key and written its entry, and deleted that live process's entry: every reaper
        took it for dead). Nothing when that write is another process's entry: the key is its. Written meanwhile
        (``Conflict``: its own announcement, a late mark of its own): read again, :data:`MARK_TRIES` times in all.
        A read that fails (the bucket's stream missing or without a leader yet) judges nothing: the mark is sent
        unconditionally, as before, and sent again while answered "no responders" (left44). Raises the gamead error
        tree."""
        for tries_left in reversed(range(MARK_TRIES)):
            try:
                seq, entry = await self.revision(info.id)
            except GameadError as exc:
                log.debug("the registry key of %s not read before its delete mark: %s", info.id, exc.message)
                return await self.delete(info.id, me)
            if entry is not None and not same_incarnation(entry, info):
                log.info("clean stop of %s: its registry key holds another process's entry (host %s, pid %d): not "
                         "deleted", info.id, entry.host, entry.pid, extra={"node_id": info.id})
                return
            try:
                return await self.delete(info.id, me, last=seq)
            except Conflict:
                if not tries_left:
                    raise

    def stop_unwritten(self, info: NodeInfo) -> list[str]:
        """What :meth:`stop` has not written yet of ``info``'s process's clean stop: ``mark`` (the delete), ``note``."""
        me = incarnation(info.id, info.pid, info.started_at)
        return [part for part in ("mark", "note") if (me, part) not in self._stop_landed]

    async def stopped(self, node: NodeInfo) -> bool:
        """True if ``node``'s process stopped cleanly: the last write under its id's key (or, nothing written there,
        under the earlier key, as :meth:`lookup`: review42b F7) is a delete mark of that process, or one naming
        none (an older gamead's), within ``registry.ttl`` of the stop; or the process noted the stop
        (:mod:`gamead_core.registry.stops`, a day). False for a death: the entry expired, was never written, or the
        mark is another process's of the same id (before, any mark under the id counted: a later process's clean
        stop hid an earlier one's kill -9, review42 F3). Raises the gamead error tree."""
        await self.open()
        key = node_key(node.id)
        op, origin, _ = await self._last(key)
        if op is None and (earlier := earlier_node_key(node.id)) != key:  # nothing under its key at all
            op, origin, _ = await self._last(earlier)
        if op in ("DEL", "PURGE") and origin in ("", incarnation(node.id, node.pid, node.started_at)):
            return True
        return await self._stops.noted(node)


__all__ = ["MARK_TRIES", "CleanStop"]
