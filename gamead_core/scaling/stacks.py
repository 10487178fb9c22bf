"""Whose workers the autoscaler's leader moves when several ``gamead up`` stacks share one NATS (attack44 F4). Pure.

**One autoscaler per NATS** (the rule, kept on purpose). The lease is one key (``autoscaler``) per NATS, and so is
the override (``gamead scale set``). The queue is shared too: every stack's workers pull from the same streams, and
the leader's policy sizes the fleet for the *whole* backlog. Two autoscalers, one per stack, would each scale their
own workers for that whole backlog: the fleet would be twice (n stacks: n times) what the policy decided, and each
scale-down would fight the other's override. A per-stack lease could not avoid that without splitting the queue's
figures by stack, which the queue does not carry; so a second ``gamead up`` that joins another stack's NATS
(``nats.url``) *follows*: its local workers stay at its ``--workers`` until it leads (the leading stack stops, or
its lease expires), and then it scales its own workers for the whole backlog.

The operator is told the truth: a ``gamead up``'s lease carries its stack (:attr:`Lease.stack`, the absolute data
dir; an older reader ignores the key, a lease of an older writer has none), so

* ``GET /v1/scale`` of the API of a ``gamead up`` names the leader's stack (``leader.stack``) and whether it is this
  API's own (``leader.thisStack``: false for another stack's; None when unknown: an older lease, or an API that is no
  ``gamead up``'s, backend other than ``local``): ``gamead scale status`` and ``scale set`` say whose workers move;
* ``gamead up`` says when it joins a NATS whose autoscaler another stack leads (:func:`follower_line`).
"""

from __future__ import annotations

import os
from typing import Any

#: The longest stack id read from a lease (a path): a longer or non-text value reads as none.
MAX_STACK_CHARS = 4096


def stack_id(data_dir: Any) -> str:
    """The id of the ``gamead up`` stack whose data dir is ``data_dir`` (a path): its absolute path."""
    return os.path.abspath(str(data_dir))


def api_stack(settings: Any) -> str | None:
    """The stack of an API node (``settings``: its :class:`~gamead_core.config.GameadSettings`): its
    ``embedded.data_dir`` when its autoscaler backend is ``local`` (the API of a ``gamead up``, which passes its data
    dir to every child), else None (a ``gamead serve`` of no stack)."""
    return stack_id(settings.embedded.data_dir) if settings.autoscaler.backend == "local" else None


def read_stack(value: Any) -> str | None:
    """A lease's ``stack`` as written by a ``gamead up``; None for a missing, non-text, empty or overlong one (a value
    gamead did not write, read as absent: never an error)."""
    if not isinstance(value, str) or not 0 < len(value) <= MAX_STACK_CHARS or not value.isprintable():
        return None
    return value


def same_stack(holder: str, stack: str | None, here: str | None) -> bool | None:
    """Is the lease of ``holder`` (written with ``stack``) held by the ``gamead up`` whose stack is ``here``?
    None when not known: ``here`` None (not a ``gamead up``'s API), or a ``gamead up``'s lease written with no stack
    (an older writer). A holder that is no ``gamead up`` (``api-…``: a ``gamead serve``) is never this stack's."""
    if here is None:
        return None
    if not holder.startswith("up-"):
        return False
    return None if stack is None else stack == here


def holder_words(holder: str, stack: str | None) -> str:
    """``gamead up pid 25379 on host vm, data dir /srv/a/.gamead`` for a ``gamead up``'s lease (``up-<host>-<pid>``);
    the holder's id for any other (``gamead serve api-h-7``)."""
    role, _, rest = holder.partition("-")
    host, _, pid = rest.rpartition("-")
    if role != "up" or not host or not pid.isdigit():
        return f"gamead serve {holder}" if role == "api" else holder
    return f"gamead up pid {pid} on host {host}" + (f", data dir {stack}" if stack else "")


def another_stack_text(leader: dict[str, Any]) -> str:
    """What ``scale status``/``scale set`` add when ``leader.thisStack`` is false: whose autoscaler it is and whose
    workers it moves (the ``GET /v1/scale`` leader of another stack). Pure."""
    who = holder_words(str(leader.get("id") or ""), leader.get("stack"))
    return (f"another stack's autoscaler ({who}) leads this NATS: its decisions, its bounds and any override move "
            "that stack's workers, not this stack's; this stack's workers stay at its --workers until it leads "
            "(one autoscaler per NATS: the queue is shared)")


def follower_line(holder: str, stack: str | None) -> str:
    """What ``gamead up`` says when it finds another stack's autoscaler leading its NATS. Pure."""
    return (f"autoscaler: this NATS's autoscaler is led by another stack ({holder_words(holder, stack)}): one "
            "autoscaler per NATS, as the queue is shared; its decisions and gamead scale set move that stack's "
            "workers; this stack's workers stay at its --workers until it leads (once that stack stops)")


__all__ = ["MAX_STACK_CHARS", "another_stack_text", "api_stack", "follower_line", "holder_words", "read_stack",
           "same_stack", "stack_id"]
