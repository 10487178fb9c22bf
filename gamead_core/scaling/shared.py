"""The autoscaler's shared state as one node holds it: the leader's decision log, written to the scaling
bucket after every tick, and this node's last view of that state, the override and the lease (for
``/v1/stats`` and ``GET /v1/scale``), read by a follower every interval (and shown to ``on_follow``: ``gamead up``
says when another stack leads, :mod:`gamead_core.scaling.stacks`).

The documents are built by the pure :mod:`gamead_core.scaling.status`; the bucket is
:class:`~gamead_core.scaling.store.ScaleStore`. Nothing here raises: a failed read keeps the last view, a
failed write is logged and the next tick writes again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from gamead_core.config.autoscaler import AutoscalerSettings
from gamead_core.errors import GameadError, error_text
from gamead_core.scaling.lease import Lease
from gamead_core.scaling.status import state_document, status_document
from gamead_core.scaling.store import Override, ScaleStore, record_decision

log = logging.getLogger(__name__)


class SharedState:
    """One node's part in the shared state: ``decisions`` (newest first, as the leader writes them) and the
    last ``view`` (the state document), ``override`` and ``lease_seen``. ``store`` is set once the scaling
    bucket is open; ``clock`` gives Unix seconds; ``on_decision`` is called with each new line of the log."""

    def __init__(self, settings: AutoscalerSettings, node_id: str, *, clock: Callable[[], float],
                 on_decision: Callable[[dict[str, Any]], None] | None = None,
                 on_follow: Callable[[Lease | None], None] | None = None) -> None:
        self.settings = settings
        self.node_id = node_id
        self.store: ScaleStore | None = None
        self._clock = clock
        self._on_decision = on_decision
        self._on_follow = on_follow  #: called with the lease each follow read (gamead up: another stack leads?)
        self.decisions: list[dict[str, Any]] = []
        self.view: dict[str, Any] | None = None
        self.override: Override | None = None
        self.lease_seen: Lease | None = None

    async def resume(self) -> None:
        """A new leader goes on with the log its predecessor wrote (empty if it cannot be read)."""
        assert self.store is not None
        try:
            previous = await self.store.state()
        except Exception as exc:  # noqa: BLE001 - start with an empty log rather than not at all
            log.info("autoscaler: cannot read the previous decisions: %s", error_text(exc))
            previous = None
        self.decisions = list((previous or {}).get("decisions") or [])

    async def follow(self) -> None:
        """Refresh the view from the bucket (state, override, lease); keep the last one on an error."""
        assert self.store is not None
        try:
            self.view, self.override, self.lease_seen = await asyncio.gather(
                self.store.state(), self.store.override(), self.store.lease())
        except Exception as exc:  # noqa: BLE001 - keep the last view
            log.debug("autoscaler: cannot read the shared state: %s", error_text(exc))
            return
        if self._on_follow is not None:
            try:
                self._on_follow(self.lease_seen)
            except Exception:  # noqa: BLE001 - a display hook must not break the loop
                log.exception("autoscaler: on_follow hook failed")

    async def record(self, entry: dict[str, Any], *, observed: dict[str, Any] | None, override: Override | None,
                     running: int | None, backend: str, leader_since: float | None, draining: Any,
                     lease_seen: Lease | None, next_in: float) -> bool:
        """Fold ``entry`` into the decisions and write the state document (a failed write is only logged).

        ``running`` is the replica count after this decision (``current`` in the state; the entry keeps the
        count it started from); ``next_in`` the seconds until the next record (the interval, or a back-off).
        True when ``entry`` started a new line (not folded into the previous one).
        """
        assert self.store is not None
        self.decisions = record_decision(self.decisions, entry)
        new_line = self.decisions[0].get("repeats") == 1
        if self._on_decision is not None and new_line:
            try:
                self._on_decision(entry)
            except Exception:  # noqa: BLE001 - a display hook must not break the loop
                log.exception("autoscaler: on_decision hook failed")
        state = state_document(
            self.settings, backend=backend, leader=self.node_id, leader_since=leader_since, now=self._clock(),
            entry=entry, running=running, draining=draining, observed=observed, decisions=self.decisions,
            next_in=next_in,
        )
        self.view, self.override, self.lease_seen = state, override, lease_seen
        try:
            await self.store.put_state(state)
        except GameadError as exc:
            log.warning("autoscaler: cannot record the decision: %s", exc.message)
        return new_line

    def status(self) -> dict[str, Any]:
        """The ``GET /v1/scale`` document of this node's last view (no I/O)."""
        return status_document(self.view, self.lease_seen, self.override, now=self._clock(),
                               settings=self.settings, node_id=self.node_id)


__all__ = ["SharedState"]
