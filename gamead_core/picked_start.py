"""The one way a server is started on ports gamead picked itself: a port found free is free only when it is looked at,
and another process of the machine can take it before the server binds it. Such a start is made again on new picks,
a bounded number of times; a port the operator chose is never moved (its start is made once).

Used by :meth:`gamead_core.embedded.EmbeddedNats.start` and :func:`gamead_core.embedded.start_on_picked_port` (a
child of this process), and by ``gamead up``'s first start of its nats-server (a child of its supervisor,
:func:`gamead_cli.commands.up_nats.start_nats`, whose picks are claimed and given back when lost).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from gamead_core.errors import QueueUnavailable

#: starts of a server on ports it picked, each on new picks when another process took one of the last between the
#: pick and the server's bind
PICKED_STARTS = 3

C = TypeVar("C")


def start_picked(start: Callable[[], C], ready: Callable[[C], None], stop: Callable[[C], None],
                 repick: Callable[[str], bool]) -> C:
    """``start()`` a server (its ports picked, or picked again, by ``start`` or ``repick``) and wait until it is
    ``ready(child)``; returns the child. A start that is not ready (``ready`` raises
    :class:`~gamead_core.errors.QueueUnavailable`, its message the problem, the server's log in it) is ``stop``-ped;
    then ``repick(problem)`` says whether it lost a picked port to another process, and if so has moved each lost
    port to a new pick (a claimed one given back), and the start is made again, up to :data:`PICKED_STARTS` starts.
    Raises the last :class:`~gamead_core.errors.QueueUnavailable` otherwise (``repick`` is not asked after the last
    start); what ``start`` raises (a port of the settings refused) ends it at once."""
    for left in range(PICKED_STARTS - 1, -1, -1):
        child = start()
        try:
            ready(child)
            return child
        except QueueUnavailable as exc:
            stop(child)
            if not left or not repick(exc.message):
                raise
    raise AssertionError("unreachable: the last start returns or raises")


__all__ = ["PICKED_STARTS", "start_picked"]
