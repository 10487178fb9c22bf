"""Silence a watch did not see is no evidence (attack32a F10): the rule shared by ``gamead up``'s watches of its
children (:mod:`gamead_core.scaling.probe`: workers and the API by their registry heartbeats;
:mod:`gamead_core.scaling.nats_watch`: nats-server by its ``/healthz``).

When ``gamead up`` itself is not run for a while (a machine at load 15, a suspended VM, its event loop held), its
readings stop too, and the first one after such a gap finds every child's last sign of life old: the drill saw a
gap of 81 s, and a kill "past the 30s" on silence no reading had shown. So the time between two readings beyond
what one reading may take (the watch's interval plus :data:`LATE` s) is not counted as silence; the first reading
after it says both figures, and the bounds run on from there. Pure.
"""

from __future__ import annotations

#: Seconds a reading may take beyond the watch's own interval (one asks with a timeout of at most
#: :data:`~gamead_core.scaling.answers.ANSWER_TIMEOUT` s) before the watch counts as not run.
LATE = 5.0

#: Why a watch was not run, for console lines.
NOT_RUN = "gamead up was not scheduled: an overloaded or suspended machine, or its event loop held"


def unseen(last: float | None, now: float, every: float = 0.0) -> float:
    """Seconds between the previous reading at ``last`` and this one at ``now`` (monotonic s; ``last`` None: no
    previous reading) that the watch did not see: all past ``every`` (its interval between readings, s) plus
    :data:`LATE`; 0.0 for a reading on time. Pure."""
    return 0.0 if last is None else max(0.0, now - last - every - LATE)


def counted_words(real: float, counted: float, gap: float, allowed: float = LATE) -> str:
    """``, 12.0s of it counted (this watch itself did not run for 81.5s, of which 5s count: gamead up was not
    scheduled)`` after a silence of ``real`` s of which ``counted`` s were seen (``gap``: the longest time the watch
    did not run, s; ``allowed``: the part of a gap that counts, s); empty when all of it was seen. Pure."""
    if real - counted <= 0.05:
        return ""
    return (f", {counted:.1f}s of it counted (this watch itself did not run for {gap:.1f}s, of which {allowed:g}s "
            "count: gamead up was not scheduled)")


def not_run_words(gap: float, allowed: float, ttl: float) -> str:
    """``but this watch itself did not run for 81.5s (…), so all but 5s of that is not counted (registry.ttl 10s)``:
    the first reading after a gap of ``gap`` s, of which ``allowed`` s count (``ttl``: ``registry.ttl``, s). Pure."""
    return (f"but this watch itself did not run for {gap:.1f}s ({NOT_RUN}), so all but {allowed:g}s of that is not "
            f"counted (registry.ttl {ttl:g}s)")


__all__ = ["LATE", "NOT_RUN", "counted_words", "not_run_words", "unseen"]
