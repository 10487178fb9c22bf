"""A write no stream took, while every stream exists: a leader election, answered as one (``queue_unavailable``).

JetStream answers a publish nobody takes with "no responders" (nats-py ``NoStreamResponseError``), which
:func:`gamead_core.queue.connection.translate` and :func:`gamead_core.queue.publish.named` read as a missing
stream or bucket (``topology_missing``, "run ``gamead doctor --repair``"). On one server that is the only cause;
in a cluster a stream whose leader died answers the same for the seconds it takes to elect another. A reviewer's
drills on three nodes had 80-4,329 submits per fail-over told that the work stream did not exist. So with
replicated streams (``queue.replicas`` > 1) the API asks its topology watch (:mod:`gamead_core.queue.watch`,
which every such error pokes into checking again): if its last check found every essential stream and bucket,
the answer is :class:`NoStreamLeader` (503 ``queue_unavailable``, retry after ``Retry-After``), else the
missing-stream answer stands, as it always does with one replica (nothing elects a leader there).
"""

from __future__ import annotations

from nats.js.errors import NoStreamResponseError

from gamead_core.errors import GameadError, NoStreamLeader, TopologyMissing
from gamead_core.queue.topology import TopologyReport


def leaderless(exc: GameadError, report: TopologyReport | None, *, replicated: bool) -> GameadError:
    """``exc`` as the client should see it given the topology watch's last ``report`` (None: no check yet) and
    whether the streams are ``replicated`` (``queue.replicas`` > 1): there, a :class:`TopologyMissing` caused by
    "no responders" becomes :class:`NoStreamLeader` (same details, chained to the same cause) while ``report``
    found every essential object; anything else is returned unchanged. Pure."""
    if not replicated or not isinstance(exc, TopologyMissing) or not isinstance(exc.__cause__, NoStreamResponseError):
        return exc
    if report is None or not report.essential_ok:
        return exc
    stream = exc.details.get("stream") if isinstance(exc.details, dict) else None
    what = f"work stream {stream}" if stream else "the stream of the write"
    out = NoStreamLeader(f"{what} took no write: it exists, but no leader answered (a cluster electing one); "
                         "retry after the time in Retry-After", details=exc.details)
    out.__cause__ = exc.__cause__
    return out
