"""Operator requests of one kind taken in turn (keys54): a ``:scale``, a ``:doctor``, a record to open or a
``:replay class=X`` asked for while one of its kind is on its way runs after it, in the order asked, instead of
cancelling it. Textual's ``exclusive`` workers cancelled the one in flight, whose thread cannot be cancelled: the
API was asked all the same and its answer dropped (``:scale 3 60`` then ``:scale 5 60``: both sent at once, in
either order, one ``holding … workers`` shown; ``:replay class=A`` then ``:purge class=B``: A's confirmation never
shown; enter on a dead letter then on another: one record opened). At most :data:`WAITING` of a kind wait; one
more is refused with a line on screen (:meth:`Turns.ask`), never dropped unsaid."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

#: requests of each kind that may wait behind the one on its way. A ``:doctor`` waiting behind one running already
#: gives a verdict newer than the keys asking for it: a third asks nothing the second does not.
WAITING = {"scale": 4, "doctor": 1, "details": 8, "dlq-count": 4}


class Turns:
    """The requests of one kind (a key of :data:`WAITING`), one at a time, first asked first served. Each request
    is a callable that starts it (a worker); the request calls :meth:`done` when it has ended, however it ended.
    Called on the app's thread only."""

    def __init__(self, kind: str) -> None:
        self.bound = WAITING[kind]
        self.busy = False  #: a request is on its way
        self.queue: deque[Callable[[], object]] = deque()  #: requests waiting behind it, oldest first

    def ask(self, start: Callable[[], object], what: str) -> str | None:
        """Start the request now, or queue it behind the one on its way. Returns None, or when :data:`WAITING` of
        its kind already wait, the line that says why the request (``what``, as the operator asked it) is not done
        (the caller shows it)."""
        if not self.busy:
            self.busy = True
            start()
            return None
        if len(self.queue) >= self.bound:
            n = len(self.queue)
            return (f"{what}: not done — {n} earlier request{'s' if n != 1 else ''} of its kind still wait"
                    f"{'s' if n == 1 else ''} behind the one on its way; ask again once they have answered")
        self.queue.append(start)
        return None

    def done(self) -> None:
        """The request on its way has ended: the next one starts."""
        if self.queue:
            self.queue.popleft()()
        else:
            self.busy = False
