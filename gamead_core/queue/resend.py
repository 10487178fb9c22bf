"""When a JetStream publish answered "no responders" is sent again, within its own deadline (attack40b F3).

"No responders" (the ``503`` status nats-server sends back for a message no subscription took: nats-py's
``NoStreamResponseError`` for a JetStream publish) means nothing was stored: no stream took the message. On a
cluster it is also what a publish meets while the cluster re-forms: a stream's leader moved, or a server that was
stopped (SIGSTOP) and resumed has not exchanged its interest with the others yet. A drill (attack40b) had ``POST
/ads`` answer 503 to several percent of the requests of the second after a frozen node resumed: each write gave up
at its first such answer. So :mod:`gamead_core.queue.acks` sends the same message again (same bytes, same
``Nats-Msg-Id`` or compare-and-set header: a resend cannot store it twice) after a pause, for as long as the
write's deadline leaves room for another try's answer; only then is the "no responders" error the answer. On one
server it means a stream is missing: the API's topology watch is told of a write's first one
(:func:`gamead_core.queue.acks.on_no_responders`), recreates it, and a resend is taken.

Pure: the rule alone, no I/O.
"""

from __future__ import annotations

__all__ = ["FIRST_PAUSE", "MAX_PAUSE", "MIN_ROOM", "resend_at"]

FIRST_PAUSE = 0.05  #: seconds before the first resend (doubling each try)
MAX_PAUSE = 0.4  #: the longest pause between two tries (seconds)
#: seconds a resend must leave before the deadline at the least, beside twice the last try's round trip: room for
#: its answer, so that a resend does not turn a definite "nothing stored" into an ambiguous "no answer in time"
MIN_ROOM = 0.1


def resend_at(tries: int, now: float, sent: float, deadline: float) -> float | None:
    """The loop time (s) at which a publish answered "no responders" is sent again, or None to give up.

    ``tries``: how often it was sent again already (0 after the first send); ``now``: the loop time of the answer;
    ``sent``: when the answered try was sent (its round trip is ``now - sent``); ``deadline``: the loop time its
    ack is awaited until. The pause is :data:`FIRST_PAUSE` doubling up to :data:`MAX_PAUSE`; the resend is made only
    if it leaves at least the larger of :data:`MIN_ROOM` and twice that round trip before the deadline."""
    pause = min(FIRST_PAUSE * (2 ** min(tries, 16)), MAX_PAUSE)
    when = now + pause
    if when + max(MIN_ROOM, 2 * (now - sent)) > deadline:
        return None
    return when
