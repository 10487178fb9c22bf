"""Keys typed ahead reach what the keys before them opened, in order (regress41 F5).

Textual hands each key from the terminal to the widget focused *when the app reads it*, while the key before it may
still be on its way: ``:`` goes to the nodes table, bubbles up to the app's binding, and only then does the
command line open and take the focus. A burst (a paste, tmux ``send-keys``, type-ahead on a slow link or a loaded
box) had its ``dlq`` typed into the table and its ``q`` quit the dashboard; ``/`` then ``Wor`` 0.3 s apart gave
``filter: r``. The same held for every key that opens something: ``r`` and its typed count, ``?``, enter on a row.
A terminal's paste (bracketed: one :class:`~textual.events.Paste` of the whole text, not keys) goes to the focused
widget the same way, so it waits its turn too: ``/`` then a pasted ``Worker`` went to the nodes table, not the
filter ``/`` opens, when the paste overtook the ``/`` (review41b).

:class:`TypeAhead` hands the app its keys one at a time: a key goes to the focused widget only once the key before
it has been handled all the way up (a turn passed from its widget to each parent in turn, behind what each has
queued, to the app), and only once the screen on top has mounted and taken its focus. A key typed at human speed
goes on at once, as before. Ctrl-C never waits. A turn that never comes back (its widget closed with the key in its
queue) is given up once that widget is gone from the screen, or once it has waited :data:`KEY_WAIT` at a widget that
handled nothing meanwhile (blocked, or the turn lost); a widget that works through its queue keeps it however long
that takes (tui54: given up KEY_WAIT after it began, as turns of 5.1 and 5.3 s were at load ~15, the keys behind
went on to the widget focused then: ``/wor`` typed ahead of a busy nodes table gave an empty filter and ``r`` opened
a replay's confirmation); at most :data:`MAX_HELD` keys wait, and any more go on as Textual would.

A mouse button (press, release, wheel: :data:`HELD_MOUSE`) waits its turn the same way (left42): Textual hands it to
the screen on top when it reads it, so a click after ``escape`` in one burst went to the screen ``escape`` was about
to close; it now goes, once the keys before it are handled and the screen on top has mounted, to the widget under
the pointer then. Pointer moves (hover) are not held.

A wheel spun while a key is on its way sends hundreds of events (:data:`HELD_WHEEL`): held one by one they filled
the :data:`MAX_HELD` places, and a key read after them went on at once, ahead of them (attack42c F5: 10,000 wheel
events then ``?`` in one burst: the ``?`` jumped 4,095 of them, which then scrolled the help it opened). A wheel
event the same as the last one held (direction, pointer position, modifiers) is counted on that one instead, and
handed on as many times in its turn; at most :data:`MAX_HELD` times, and a wheel event that finds no place (the
count at its bound, or every place taken) is dropped, never handed on ahead of what is held: a wheel spun that far
meanwhile has reached the end of what it scrolls anyway. Keys keep their order with the wheel events around them.
"""

from __future__ import annotations

import time
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Collection
from typing import Any
from weakref import WeakSet

from textual import events
from textual.message_pump import MessagePump
from textual.timer import Timer

#: seconds a key's turn waits at a widget (or a new screen) that handles nothing meanwhile, then the next key goes on
KEY_WAIT = 5.0
#: seconds between looks at a turn under way (is the widget holding it still there? has it handled anything?)
LOOK_EVERY = 0.5
#: keys waiting their turn at most (a paste of a few thousand characters); any more are handed on at once
MAX_HELD = 4096
#: times a turn lets a widget's queued messages go first (those the key posted there, e.g. ``Input.Submitted``)
BEHIND = 4
#: times a turn goes from the key's widget up to the app (see :meth:`TypeAhead._pass`)
LAPS = 2
#: the mouse events held as keys are (the module doc): its buttons and wheel, not its moves
HELD_MOUSE = (events.MouseDown, events.MouseUp, events.MouseScrollDown, events.MouseScrollUp,
              events.MouseScrollLeft, events.MouseScrollRight)
#: the held mouse events a wheel sends: counted on the last one held when alike (the module doc)
HELD_WHEEL = (events.MouseScrollDown, events.MouseScrollUp, events.MouseScrollLeft, events.MouseScrollRight)


class TypeAhead:
    """One app's keys, handed on one at a time. ``forward`` is Textual's own handling of a key read from the
    terminal (``App.on_event``: priority bindings, then the focused widget); ``urgent`` keys (``ctrl+c``) skip
    the queue. ``key``, ``_drain``, ``_done`` and ``_give_up`` run in the app's task, one at a time; ``_pass`` and
    ``_screen_ready`` in the task of the widget or screen holding the turn, ``_look`` in a timer's: those never
    await and hand on to the app by a callback."""

    def __init__(self, app: Any, forward: Callable[[events.Event], Awaitable[None]],
                 urgent: Collection[str] = ("ctrl+c",)) -> None:
        self.app = app
        self.forward = forward
        self.urgent = frozenset(urgent)
        #: what waits its turn, each with the times it is handed on (a wheel's count, else 1)
        self.held: deque[tuple[events.Key | events.Paste | events.MouseEvent, int]] = deque()
        #: screens that have mounted and taken their focus since a key last found them on top
        self.settled: WeakSet[Any] = WeakSet()
        self._turn = 0
        self._since: float | None = None  #: when the turn under way began (None: no key on its way)
        self._watchdog: Timer | None = None
        self._target: weakref.ref[MessagePump] | None = None  #: the widget the key on its way was handed to
        self._at: weakref.ref[MessagePump] | None = None  #: where the turn under way waits now
        #: (turn, where it waits, what that node handles next) at a look, and since when (monotonic s) it is so
        self._mark: tuple[int, int, int] | None = None
        self._still = 0.0

    async def key(self, event: events.Key | events.Paste | events.MouseEvent) -> None:
        """A key (or a paste, a mouse button) read from the terminal: handed on now if nothing is on its way, else
        after the keys before it; a wheel event like the last one held is counted on it (the module doc)."""
        if getattr(event, "key", None) in self.urgent:
            await self.forward(event)
            return
        if isinstance(event, HELD_WHEEL):
            if self.held and _alike(self.held[-1][0], event):
                last, times = self.held[-1]
                self.held[-1] = (last, min(times + 1, MAX_HELD))  # past MAX_HELD: dropped
                return
            if len(self.held) >= MAX_HELD:
                return  # dropped, not handed on ahead of the keys held
        if len(self.held) >= MAX_HELD:
            await self.forward(event)
            return
        self.held.append((event, 1))
        await self._drain()

    async def _drain(self) -> None:
        while self.held and self._since is None:
            if not self.app.screen_stack:  # closing: no screen left to take them (tuiwait44: ScreenStackError)
                self.held.clear()
                return
            screen = self.app.screen
            if screen not in self.settled:  # just pushed: its compose, mount and focus come first in its queue
                turn = self._begin()
                if not self._post(screen, self._screen_ready, screen, turn):
                    self.settled.add(screen)
                    self._since = None
                continue
            event, times = self.held.popleft()
            target = _under(screen, event) if isinstance(event, events.MouseEvent) else self.app.focused or screen
            self._target = self._at = weakref.ref(target)
            turn = self._begin()
            await self.forward(event)
            for _ in range(times - 1):  # a wheel's count: each a fresh event (a handled one may be stopped)
                await self.forward(_again(event))
            self._pass(target, turn, 0)

    def _begin(self) -> int:
        self._turn += 1
        self._since = time.monotonic()
        if self._watchdog is None:
            self._watchdog = self.app.set_interval(LOOK_EVERY, self._look, name="typeahead")
        return self._turn

    def _pass(self, node: MessagePump, turn: int, behind: int, lap: int = 1) -> None:
        """The key of ``turn`` has been handled by ``node``: once what it queued there meanwhile has gone first, on
        to its parent (where the key bubbles next), up to the app; a node that cannot take it (closed) hands
        straight to the app. Then a second lap from the key's widget: a binding runs at the app but its action may
        post to that widget (``Input.Submitted`` of enter), which bubbles up to the app again."""
        if turn != self._turn:
            return
        if _queued(node) and behind < BEHIND and self._post(node, self._pass, node, turn, behind + 1, lap):
            return
        if node is self.app:
            target = self._target() if self._target is not None else None
            if lap < LAPS and target is not None and self._post(target, self._pass, target, turn, 0, lap + 1):
                return
            self.app.call_next(self._done, turn)
            return
        parent = node._parent if isinstance(node._parent, MessagePump) else self.app
        if not self._post(parent, self._pass, parent, turn, 0, lap):
            self._post(self.app, self._pass, self.app, turn, 0, lap)

    def _post(self, node: MessagePump, callback: Callable[..., Any], *args: Any) -> bool:
        """``callback(*args)`` in ``node``'s task after what it has queued; the turn now waits at ``node``."""
        self._at = weakref.ref(node)
        return node.call_later(callback, *args)

    def _screen_ready(self, screen: Any, turn: int) -> None:
        """In ``screen``'s task, after its compose and mount: its focus is set (or on its way to the app)."""
        self.settled.add(screen)
        self._post(self.app, self._pass, self.app, turn, 0)

    async def _done(self, turn: int) -> None:
        if turn == self._turn:
            self._since = None
            await self._drain()

    def _look(self) -> None:
        """Every LOOK_EVERY s while keys come (a timer's task): a turn whose widget is gone (removed or closed with
        the turn in its queue), or stalled (:meth:`_stalled`), is given up in the app's task; idle, the timer stops."""
        if self._since is not None:
            at = self._at() if self._at is not None else None
            if at is None or (at is not self.app and _gone(at)) or self._stalled(at):
                self.app.call_later(self._give_up, self._turn)
        elif not self.held and self._watchdog is not None:
            self._watchdog.stop()
            self._watchdog = None

    def _stalled(self, at: MessagePump) -> bool:
        """Whether the turn has waited :data:`KEY_WAIT` s at ``at`` with ``at`` handling nothing meanwhile: the
        same message next in its queue (or none) at every look since."""
        now = time.monotonic()
        mark = (self._turn, id(at), id(_next(at)))
        if mark != self._mark:
            self._mark, self._still = mark, now
            return False
        return now - self._still >= KEY_WAIT

    async def _give_up(self, turn: int) -> None:
        if turn == self._turn and self._since is not None:
            self.settled.add(self.app.screen)
            self._turn += 1  # a late hand-back of the old turn is ignored
            self._since = None
            await self._drain()


def _under(screen: Any, event: events.MouseEvent) -> Any:
    """The widget of ``screen`` under ``event``'s pointer (where Textual sends it), else ``screen``."""
    try:
        return screen.get_widget_at(event.screen_x, event.screen_y)[0]
    except Exception:  # noqa: BLE001 - NoWidget, or a screen not laid out: the screen takes it
        return screen


def _alike(held: events.Event, event: events.MouseEvent) -> bool:
    """Whether wheel ``event`` is the same as ``held`` but for when it came: its kind (direction), the pointer's
    position (hence the widget it goes to) and the modifiers."""
    return (type(held) is type(event) and isinstance(held, events.MouseEvent)
            and (held.screen_x, held.screen_y, held.shift, held.meta, held.ctrl)
            == (event.screen_x, event.screen_y, event.shift, event.meta, event.ctrl))


def _again(event: events.MouseEvent) -> events.MouseEvent:
    """A fresh copy of wheel ``event``: the one handed on may have been stopped or marked forwarded."""
    return type(event).from_event(event.widget, event)  # type: ignore[arg-type]  # widget: None from a terminal


def _gone(node: MessagePump) -> bool:
    """Whether ``node`` will never handle what is in its queue: closed, closing, or taken off the app's tree."""
    return bool(getattr(node, "_closed", False) or getattr(node, "_closing", False)) or not node.is_attached


def _next(node: MessagePump) -> object:
    """The message ``node`` handles next (the one it took out to look at, else its queue's first), or None."""
    pending = getattr(node, "_pending_message", None)
    if pending is not None:
        return pending
    queue = getattr(getattr(node, "_message_queue", None), "_queue", None)
    return queue[0] if queue else None


def _queued(node: MessagePump) -> bool:
    """Whether ``node`` has messages it has not handled yet: in its queue, or the one it took out to look at
    (Textual peeks at the next message to merge repeats, so a queue can look empty with a message still to go)."""
    return bool(node.message_queue_size) or getattr(node, "_pending_message", None) is not None
