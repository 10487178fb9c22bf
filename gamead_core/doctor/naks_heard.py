"""The hand-backs (``nak``) nats-server announces while one doctor run reads, for :mod:`gamead_core.doctor.unheld`.

A retry is ``nak``'ed with a delay and stays ack-pending at JetStream until its back-off ends, held by no worker.
The unheld check leaves out the timed retries whose record the first look read as ``queued`` with ``retryAt``
ahead; a retry that began after its record was read (every second under a steady flow of failing ads) was counted
as a dead worker's unannounced delivery: chaos48, 150 ads/s with 10 % of the ads failing 60 % of their attempts and
no worker dead, the note said ``ack_pending_unheld · 32 … a dead worker's last deliveries``. Each message whose
``nak`` is heard from the run's start (the advisories of :mod:`gamead_core.worker.naks_seen`) is taken as one
such retry: a hand-back without delay is counted too, so the check can only undercount, as its other races do.
A dead worker's unannounced deliveries are never ``nak``'ed (their ack subjects died with it): still counted.

Bounded: at most :data:`~gamead_core.worker.naks_seen.REMEMBERED` messages; a subscription that fails or is
refused hears nothing (the count is then what it was before).
"""

from __future__ import annotations

import contextlib
import logging

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from gamead_core.errors import error_text
from gamead_core.queue.inline_sub import subscribe_inline
from gamead_core.queue.read_end import unsubscribe_quietly
from gamead_core.worker.naks_seen import REMEMBERED, SUBJECT, parse_nak

log = logging.getLogger(__name__)


class NaksHeard:
    """Work-stream messages (stream, sequence) nats-server announced a ``nak`` of since :meth:`start`."""

    def __init__(self) -> None:
        self._seen: set[tuple[str, int]] = set()
        self._sub: Subscription | None = None

    def __len__(self) -> int:
        return len(self._seen)

    async def start(self, nc: NATS, timeout: float) -> None:
        """Subscribe on ``nc`` and flush (``timeout`` s), so a ``nak`` after this returns is heard. Never raises."""
        try:
            self._sub = await subscribe_inline(nc, SUBJECT, self._on_advisory)
            await nc.flush(timeout)
        except Exception as exc:  # noqa: BLE001 - the check goes on without them (the module doc)
            log.debug("doctor: nak advisories not heard: %s", error_text(exc))

    async def stop(self) -> None:
        sub, self._sub = self._sub, None
        if sub is not None:
            with contextlib.suppress(Exception):
                await unsubscribe_quietly(sub)

    def _on_advisory(self, msg: Msg) -> None:
        parsed = parse_nak(msg.subject, msg.data or b"")
        if parsed is not None and len(self._seen) < REMEMBERED:
            self._seen.add(parsed[:2])


__all__ = ["NaksHeard"]
