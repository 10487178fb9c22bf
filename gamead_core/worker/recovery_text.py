"""The one log line of a dead worker's recovery (:func:`gamead_core.worker.reaper.recover`), honest about what a
recovery cannot see.

A recovery knows only the ads the dead worker *announced* in its registry entry (``holding``). Deliveries it
received in its last moments and had not announced yet (a pull's reply in flight, an ad a long poll brought
in, one it lingered on, ``worker.linger_ms``) are invisible to it, and JetStream offers no way to hand them
back without their ack subjects, which only the dead worker had: they come back when the ``ack_wait`` of
their level consumer expires (read from the server). So the line counts what it knows and always says that,
once (attack26 finding F1: it said "0 left to JetStream's redelivery" while ads waited 30 s, and nothing at
all for a worker that had announced nothing).
"""

from __future__ import annotations

from gamead_core import names
from gamead_core.worker.consumer_ack_wait import CONSUMER, AckWaits


async def level_ack_waits(ack_waits: AckWaits, partitions: int, announced: float | None,
                          fallback: float) -> dict[float, str]:
    """The ``ack_wait`` (seconds) of every level consumer of ``partitions`` work-stream partitions → where it
    came from (:meth:`AckWaits.of_consumer`: one ``CONSUMER.INFO`` each, cached a minute per connection); after
    the first that cannot be read, the fallback alone (a recovery never waits a timeout per consumer). Never
    raises but ``CancelledError``."""
    waits: dict[float, str] = {}
    for p in range(partitions):
        for level in names.LEVELS:
            wait, source = await ack_waits.of_consumer((names.work_stream(p), names.level_consumer(level, p)),
                                                       announced, fallback)
            waits.setdefault(wait, source)
            if source != CONSUMER:  # one consumer unreadable (NATS away, a consumer deleted): no more waits
                return waits
    return waits


def unannounced_caveat(waits: dict[float, str], left: int = 0) -> str:
    """The clause every recovery line ends with (pure): ``left`` announced ads left to JetStream, and any
    delivery not announced yet, come back when the level consumers' ``ack_wait`` (``waits``: seconds → source)
    expires."""
    wait = ", ".join(f"{w:g} s, {source}" for w, source in sorted(waits.items())) or "its consumer's"
    who = (f"those {left}, and any delivery it had not announced yet (its last moments), come"
           if left else "any delivery it had not announced yet (its last moments) comes")
    return f"{who} back when JetStream's ack_wait expires ({wait})"


def expired_line(worker_id: str, pid: int, waits: dict[float, str]) -> str:
    """The line for a worker that died after its registry entry had expired (pure): a supervisor that killed it
    after ``registry.ttl`` of silence finds no entry, so what it held is not known, and every delivery it held
    comes back when the level consumers' ``ack_wait`` (``waits``: seconds → source) expires (attack27b F5: no
    line said so, and the ads sat ~30 s unexplained)."""
    wait = ", ".join(f"{w:g} s, {source}" for w, source in sorted(waits.items())) or "its consumer's"
    return (f"worker {worker_id} (pid {pid}) died after its registry entry had expired, so what it held is not "
            f"known: every delivery it held comes back when JetStream's ack_wait expires ({wait})")


def unregistered_line(worker_id: str, pid: int) -> str:
    """The line for a worker process that ended before it registered (pure): a worker pulls only once its first
    heartbeat is written (:mod:`gamead_core.worker.runtime`), so it held nothing; e.g. one refused at its start
    (exit 5), which the expired-entry line (:func:`expired_line`) said held deliveries (attack28c F3)."""
    return f"worker {worker_id} (pid {pid}) exited before it registered: it held nothing"


def recovery_line(worker_id: str, held: int, running: int, charged: bool, handed_back: int, untouched: int,
                  waits: dict[float, str], *, gone: str = "died", acked: int = 0) -> str:
    """The recovery's summary (pure): ``held`` announced ads, ``running`` of them running (the verdict:
    ``charged`` or not), ``handed_back`` ``nak``'ed now, ``untouched`` left as they were (said when
    any); the rest are left to JetStream's redelivery, said together with the deliveries it had not announced
    (:func:`unannounced_caveat`). No clause counts 0 of what JetStream still holds: it cannot know that. ``gone``:
    what became of the worker (``died``; the reaper's ``stopped answering …`` for an expired entry); ``acked``: final
    under their held delivery, acknowledged now (their ack died with the worker)."""
    if not held:
        return f"worker {worker_id} {gone} announcing no held ad; " + unannounced_caveat(waits)
    verdict = ("the one running was charged an attempt" if charged else
               "none charged (each runs alone next)" if running else "none charged")
    left = max(0, held - handed_back - untouched - acked)
    done = [f"{handed_back} handed back"]
    if acked:
        done.append(f"{acked} acknowledged (their outcome was written; their ack was not sent)")
    if untouched:
        done.append(f"{untouched} left as they were (settled, gone, or already redelivered)")
    if left:
        done.append(f"{left} left to JetStream")
    return (f"worker {worker_id} {gone} holding {held} announced ad(s), {running} of them running: {verdict}; "
            f"{', '.join(done)}; {unannounced_caveat(waits, left)}")


__all__ = ["expired_line", "level_ack_waits", "recovery_line", "unannounced_caveat", "unregistered_line"]
