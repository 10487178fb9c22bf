"""Who acts on the manual override, and whether the API node answering leads (attack44c F5). Pure.

``gamead scale set`` told people who applies their override (no autoscaler, an advice-only leader, another stack's
autoscaler, a leader whose last call failed) while ``-o json`` said none of it: its ``note`` (the clamp) was null.
:func:`applied_by` is the one reading of ``GET /v1/scale``'s document: ``appliedBy`` in ``GET /v1/scale`` and in
``POST``/``DELETE /v1/scale/override``'s answers, and the sentence ``gamead scale set``/``clear`` print
(``appliedBy.text``). ``by`` is one of :data:`APPLIED_BY`:

* ``no_leader``: no autoscaler holds the lease: nothing applies it until one leads;
* ``advice_only``: the leader's backend is ``none``: it only shows what it would do;
* ``another_stack``: another ``gamead up`` stack's autoscaler leads this NATS: it moves that stack's workers;
* ``leader_failing``: the leader's last scale call (or decision) failed: recorded, applied once one succeeds;
* ``leader``: the leader applies it at its next decision.

``leaderIsThisNode``: whether the leader is the API node that answered (``node``); false for a follower (a ``gamead
serve`` sharing a ``gamead up``'s NATS answers for the ``gamead up``'s autoscaler); null when not known.
"""

from __future__ import annotations

from typing import Any, Final

from gamead_core.scaling.stacks import another_stack_text, holder_words

#: The values of ``appliedBy.by``, stable names.
APPLIED_BY: Final = ("leader", "leader_failing", "another_stack", "advice_only", "no_leader")

NO_LEADER_TEXT: Final = ("no autoscaler holds the lease now: nothing applies it until one leads (gamead up, or a "
                         "gamead serve with backend kubernetes or none)")


def _who(leader: dict[str, Any], here: bool | None) -> str:
    who = holder_words(str(leader.get("id") or ""), leader.get("stack"))
    return who + ("; this API node" if here else "; not this API node, which only answers for it" if here is False
                  else "")


def applied_by(doc: dict[str, Any]) -> dict[str, Any]:
    """``appliedBy`` of a ``GET /v1/scale`` document (``backend``, ``leader``, ``node``, ``error``, ``desired``,
    ``reason``): ``by`` (:data:`APPLIED_BY`), ``leader`` (its id, or null), ``leaderIsThisNode``, ``failed``
    (``scale_call`` or ``decision`` for ``leader_failing``, else null), ``error`` (that failure's) and ``text``, the
    sentence ``gamead scale set`` prints. Pure."""
    leader = doc.get("leader") if isinstance(doc.get("leader"), dict) else None
    node = doc.get("node")
    here = None if leader is None or not node else leader.get("id") == node
    failed = error = None
    if leader is None:
        by, text = "no_leader", NO_LEADER_TEXT
    elif doc.get("backend") == "none":
        by = "advice_only"
        text = f"backend none: the leader ({_who(leader, here)}) only shows what it would do; no worker count changes"
    elif leader.get("thisStack") is False:  # attack44 F4: B's override scaled A's workers, said as if B's
        by, text = "another_stack", f"applied at its next decision by {another_stack_text(leader)}"
    elif doc.get("error"):
        by, error = "leader_failing", str(doc["error"])
        failed = "scale_call" if doc.get("desired") is not None else "decision"
        what = ("its last scale call failed" if failed == "scale_call"
                else f"its last decision failed ({doc.get('reason') or 'no reason recorded'})")
        text = (f"recorded, but not applied yet: {what}: {error}; the leader ({_who(leader, here)}) retries, and "
                "applies it once a scale call succeeds")
    else:
        by, text = "leader", f"applied by the autoscaler's leader ({_who(leader, here)}) at its next decision"
    return {"by": by, "leader": None if leader is None else leader.get("id"), "leaderIsThisNode": here,
            "failed": failed, "error": error, "text": text}


__all__ = ["APPLIED_BY", "NO_LEADER_TEXT", "applied_by"]
