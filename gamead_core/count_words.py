"""A count with what it counts, the one way gamead writes one for people, in the CLI, the dashboard and the
sentences the API, the autoscaler and the telemetry log (``2,622 ads``, ``1 worker``, ``3 DLQ entries``). Before
(reread48) the CLI's ``formats.counted``, the autoscaler's reason line (``count_of``) and a dozen hand-written
``entr{'y' if n == 1 else 'ies'}`` each wrote it again. Pure."""

from __future__ import annotations

from typing import Any


def count_text(n: Any) -> str:
    """A count as gamead prints counts, ``2,622``; anything but an int as it is (``?``). Pure."""
    return f"{n:,}" if isinstance(n, int) and not isinstance(n, bool) else str(n)


def counted(n: Any, what: str = "ad", many: str | None = None) -> str:
    """A count with what it counts, as the CLI prints counts of ads (``gamead submit``'s summary): ``2,622 ads``,
    ``1 ad``, ``0 ads`` (:func:`count_text`'s figure; ``what``: another noun, ``worker``; ``many``: its plural when
    not ``what`` + ``s``, ``DLQ entries``). Before (units46) the summary said ``sent 200``, ``rejected 0``: 200 of
    what. Pure."""
    return f"{count_text(n)} " + (what if n == 1 else many or what + "s")


__all__ = ["count_text", "counted"]
