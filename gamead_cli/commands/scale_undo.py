"""What undoes a ``gamead scale set``: the earlier override it replaced, set again for what was left of it
(words58: after replacing ``5 workers until 00:28:09 UTC`` it printed ``undo with: gamead scale clear``, which
ends every override rather than restoring that one)."""

from __future__ import annotations

import math
from typing import Any

from gamead_cli.program import follow_up
from gamead_core.durations import exact_duration


def undo_text(body: dict[str, Any], again: str) -> str:
    """``undo with: …`` of a ``POST /v1/scale/override`` answer ``body``: when it replaced an override with a
    second or more left, the command that sets that one again until about its end (``gamead scale set 5 --for
    7m17s --api …``: its ``remainingSeconds`` at the answer, on the service's clock, rounded up to whole seconds)
    then `` · the policy alone: gamead scale clear …``; else the ``scale clear`` command alone. ``again``: the
    flags reaching the same API (:func:`gamead_cli.options.reach_again`). Pure but for the ``PATH`` lookup of
    :func:`follow_up`."""
    clear = follow_up("scale", "clear", again=again)
    before = body.get("replaced") or {}
    replicas, left = before.get("replicas"), before.get("remainingSeconds")
    if isinstance(replicas, bool) or not isinstance(replicas, int) or not isinstance(left, (int, float)) \
            or not 1 <= left < math.inf:
        return f"undo with: {clear}"
    restore = follow_up("scale", "set", str(replicas), "--for", exact_duration(math.ceil(left)), again=again)
    return f"undo with: {restore} · the policy alone: {clear}"


__all__ = ["undo_text"]
