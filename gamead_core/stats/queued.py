"""The sequence ``submittedPerSec`` counts: the work streams' growth without the write checks' messages. Pure.

The work streams' last sequence (summed over the partitions) grows by one for every ad queued (a submit, a replay,
a revived message) and for every write check's message (:mod:`gamead_core.queue.check_count`), which no one
queued. :func:`queued_sequence` takes the checks off; it never goes down while the streams do not, and never grows
more than they did, so a check counted before its message is stored (or never stored) only holds the count back.
"""

from __future__ import annotations


def queued_sequence(last_seq: int, checked: int | None,
                    prev: tuple[int, int, int] | None) -> tuple[int, int, int]:
    """(``last_seq``, checks taken off, queued sequence) after a reading of ``last_seq`` (the work streams' last
    sequence) and ``checked`` (the check counter; None: unread, the last one read stands), given the previous
    result ``prev`` (None at the first reading). The queued sequence is ``last_seq − checked`` held between the
    previous one and the previous one plus the streams' growth; streams that went back (recreated) start again
    from ``last_seq − checked``, at least 0."""
    if prev is None:
        checks = checked or 0
        return last_seq, checks, max(0, last_seq - checks)
    prev_seq, prev_checks, prev_queued = prev
    checks = prev_checks if checked is None else checked
    if last_seq < prev_seq:
        return last_seq, checks, max(0, last_seq - checks)
    queued = min(max(prev_queued, last_seq - checks), prev_queued + last_seq - prev_seq)
    return last_seq, checks, queued


__all__ = ["queued_sequence"]
