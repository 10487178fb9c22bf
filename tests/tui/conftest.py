"""Fixtures of the dashboard tests: a stack of this package's own (registry ttl 3 s) and Pilot helpers.

The session ``stack`` (tests/conftest.py) is shared with other tests, has a worker that drains its queue
at once and the default 10 s registry ttl; tests that need an empty-handed queue, a 3 s ttl, a faulty
worker or an API to stop run on ``observed``, a NATS + API of this package's own.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from textual.pilot import Pilot

from gamead_core.embedded import EmbeddedNats
from tests.support import Proc, start_api, start_worker, wait_for

T = TypeVar("T")

DATA = Path(__file__).parent / "data"
#: seconds between two looks of :func:`until`
LOOK = 0.05
#: seconds a pilot wait allows by default before it fails: a deadline for a failure, never a wait (a wait ends when
#: its state is reached). 10 s was a budget for a quiet machine: at load 15-20 "the app quiet" (test_sizes 79x40)
#: and the live log's fault line (20 s) timed out (tui54)
DEADLINE = 30.0
TTL = 3.0
#: every process of the observed stack: fast heartbeats, short ttl, no rate limit on /v1
OBSERVED_ENV = {
    "GAMEAD_REGISTRY__TTL": str(TTL),
    "GAMEAD_REGISTRY__HEARTBEAT_INTERVAL": "1",
    "GAMEAD_RATELIMIT__ENABLED": "false",
}


@dataclass
class Observed:
    """A NATS and one API of the test module's own."""

    nats: EmbeddedNats
    api: Proc
    url: str
    logs: Path

    def worker(self, worker_id: str, concurrency: int = 2, **env: str) -> Proc:
        return start_worker(self.nats.url, self.logs, worker_id=worker_id, concurrency=concurrency,
                            **OBSERVED_ENV, **env)


def serve(nats_url: str, port: int | None, logs: Path, **env: str) -> tuple[Proc, str]:
    """Start ``gamead serve`` on ``port`` (None: a free one, picked again if another process takes it first) and
    wait until it is ready."""
    proc, url = start_api(nats_url, logs, port=port, **{**OBSERVED_ENV, **env})

    def observing() -> bool:  # its stats sampler has listed the registry, its own heartbeat included
        body = httpx.get(f"{url}/v1/workers", timeout=2).json()
        return any(n["pid"] == proc.pid for n in body.get("items", []))

    wait_for(observing, timeout=10, what=f"API {url} in its own registry")
    return proc, url


@pytest.fixture(scope="package")
def observed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Observed]:
    root = tmp_path_factory.mktemp("observed")
    nats = EmbeddedNats(root / "nats").start()
    api, url = serve(nats.url, None, root)
    yield Observed(nats, api, url, root)
    api.stop()
    nats.stop()


@pytest.fixture
def recorded() -> dict[str, Any]:
    """A ``gamead top --once -o json`` recording of a live stack, edited to show every state once: a late
    level, a stuck worker, three error classes in the DLQ, an autoscaler decision."""
    return json.loads((DATA / "recorded.json").read_text(encoding="utf-8"))


async def until(pilot: Pilot[Any], probe: Callable[[], T], *, timeout: float = DEADLINE,
                what: str = "condition") -> T:
    """Let the app run until ``probe()`` is truthy; fail naming ``what`` after ``timeout`` seconds, or at once when
    the app has ended with it still falsy. The probe is looked at once more when the deadline has passed: on a
    loaded machine the last pause can outlast the deadline with the outcome reached meanwhile (typeahead43: "timed
    out ... waiting for the first DLQ entry marked (last: {'01m87v…'})", the set filled during that pause).

    Between looks the app runs on its own (:data:`LOOK` s of ``asyncio.sleep``, then the screen's pending update, as
    ``pilot.pause`` does), never ``pilot.pause(…)`` itself: that
    posted a callback to the app and to every widget on screen (71 on the dashboard at 120x40) and waited for each
    at every look, ~4.7 ms of CPU (0.2 with a sleep) and as many messages queued ahead of the app's own work; a
    key's turn (``app.typeahead``), which goes widget to widget behind what each has queued, waited behind them at
    each step (tui54: at load ~15, turns of 5.1 and 5.3 s, given up at ``typeahead.KEY_WAIT`` then)."""
    import asyncio

    deadline = time.monotonic() + timeout
    while True:
        last = probe()
        if last:
            return last
        if time.monotonic() >= deadline:
            break
        if not pilot.app.is_running:
            raise AssertionError(f"the app ended while waiting for {what} (last: {last!r})")
        await asyncio.sleep(LOOK)
        pilot.app.screen._on_timer_update()  # the screen's pending update, as pilot.pause does
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def raised_toasts(app: Any) -> list[str]:
    """The messages of every toast ``app`` raised, expired or not. Iterating ``app._notifications`` drops a toast
    whose timeout (5-6 s) has passed since it was raised, and under load one ``pilot.pause()`` alone took that
    long (flaky17: a check read an empty list)."""
    return [n.message for n in app._notifications._notifications.values()]


def screen_text(app: Any) -> str:
    """What the terminal shows now, as plain text (the same render as the SVG snapshots)."""
    import io

    from rich.console import Console

    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), force_terminal=True, record=True,
                      legacy_windows=False, safe_box=False)
    console.print(app.screen._compositor.render_update(full=True, screen_stack=app._background_screens))
    return console.export_text()


def row_keys(table: Any) -> list[str]:
    """The keys of a DataTable's rows, in display order."""
    return [str(table.coordinate_to_cell_key((i, 0)).row_key.value) for i in range(table.row_count)]


async def burst(pilot: Pilot[Any], *keys: Any) -> None:
    """Send ``keys`` to the app as a terminal does when they are typed faster than the app handles them (a paste,
    tmux ``send-keys``, type-ahead on a slow link): every key handed to the driver at once, in order, without
    :meth:`Pilot.press`'s wait for the app to go idle after each; then wait until the app has read them. A key is a
    character (``":"``, ``"q"``), a Textual key name (``"enter"``, ``"escape"``) or an event to send as it is
    (``events.Paste("Wor")``: a terminal's bracketed paste).

    Returns once the app has read every key (a callback handed to the driver after them has run): each is then
    handed on or held by ``app.typeahead``, not necessarily handled yet. Wait on the outcome a test asserts with
    :func:`until`, and with :func:`handled` before asserting that a key did nothing. ``pilot.pause()`` is no
    such wait: Textual's ``wait_for_idle`` takes a process that got under 1 ms of CPU in 20 ms for idle, and on a
    loaded machine a process waiting for a CPU is that (flake43: 4 of test_typeahead's 8 tests failed in one
    loaded ``make test``, e.g. ``filter_text '' == 'wor'``: the check ran before ``/`` had been read). Both trees
    pinned to one CPU beside 10 busy loops, at once: test_typeahead with ``pilot.pause()`` here 6 of 16 failed
    (2 rounds), then 3 of 24 (3 more, all ``'' == 'wor'``); with this wait, 2 of 16 and 1 of 24 (each a 10 s
    deadline passed; a burst's outcome now has 30 s)."""
    import unicodedata

    from textual import events
    from textual.keys import REPLACED_KEYS, _character_to_key, _get_unicode_name_from_key

    app = pilot.app
    for key in keys:
        if isinstance(key, events.Event):
            event = key
        else:
            name = _character_to_key(key) if len(key) == 1 and not key.isalnum() else key
            char = key if len(key) == 1 else {"enter": "\r", "escape": "\x1b", "space": " "}.get(key)
            if char is None:  # a printable key's name ("colon", "left_square_bracket"): its character, as press has
                try:
                    char = unicodedata.lookup(_get_unicode_name_from_key(REPLACED_KEYS.get(key, key)))
                except KeyError:
                    char = None
            event = events.Key(name, char)
        event.set_sender(app)
        app._driver.send_message(event)
    await keys_read(pilot)


async def press(pilot: Pilot[Any], *keys: Any) -> None:
    """Type ``keys`` (as :func:`burst` takes them) and wait until each is read and handled all the way up: what
    ``pilot.press`` is used for, waiting on the app's state instead of the machine's. ``pilot.press`` waits after
    every key, twice, until the process looks idle (``wait_for_idle``: under 1 ms of CPU in a 20 ms sleep, else again,
    up to 1 s), then up to a fixed 30 s for every widget on screen to take a callback (``WaitForScreenTimeout``).
    Pinned to one CPU beside 8 busy loops, ``:replay class=TimeoutError`` then ``:purge class=ValueError`` (52 keys
    by ``pilot.press``) ended in that ``WaitForScreenTimeout``, then the test's 120 s timeout (flake56; the same
    modules were cut at 120 s in a ``make test`` at load 38-46: test_keys_in_flight, test_markup_c5,
    test_dashboard_offline). The keys go in one burst: the app hands each on once the one before has been handled
    (``app.typeahead``, tests/tui/test_typeahead.py)."""
    await burst(pilot, *keys)
    try:
        await until(pilot, lambda: all_handled(pilot.app), what=f"the keys {keys!r} handled")
    except AssertionError as exc:  # load59A: "(last: False)" said nothing of where the keys were held
        raise AssertionError(f"{exc}; {typeahead_state(pilot.app)}") from None


def typeahead_state(app: Any) -> str:
    """Where ``app.typeahead``'s keys are: how many wait, and where the turn under way waits and since when."""
    typeahead = app.typeahead
    at = typeahead._at() if typeahead._at is not None else None
    since = typeahead._since
    turn = "no turn under way" if since is None else (
        f"turn {typeahead._turn} waiting at {at!r} for {time.monotonic() - since:.1f}s"
        f" ({getattr(at, 'message_queue_size', '?')} messages queued there)")
    return f"typeahead: {len(typeahead.held)} key(s) held, {turn}"


async def keys_read(pilot: Pilot[Any]) -> None:
    """Wait until the app has read every key (event) handed to its driver so far, by :func:`burst` or
    :meth:`Pilot.press`: a callback handed to the driver after them has run (the driver posts in order). A key read
    is handed on or held by ``app.typeahead``, not necessarily handled yet. Fails after :data:`DEADLINE` s."""
    import asyncio

    from textual import events

    read = asyncio.Event()
    pilot.app._driver.send_message(events.Callback(callback=read.set))
    await until(pilot, read.is_set, what="every key handed to the driver read")


async def handled(pilot: Pilot[Any]) -> None:
    """Wait until every key handed to the driver so far has been read and handled all the way up
    (:func:`all_handled`): what a test waits for before asserting that keys did nothing. Fails after
    :data:`DEADLINE` s each."""
    await keys_read(pilot)
    await until(pilot, lambda: all_handled(pilot.app), what="every key read handled")


async def settled(pilot: Pilot[Any], *, timeout: float = DEADLINE) -> None:
    """Wait until the app has done all it was asked so far: every key read handled (:func:`handled`), then at one
    look nothing queued at the app, its screen or any widget on it and no refresh, layout or recompose of them
    pending (:func:`quiet`); the frame :func:`screen_text` renders is then the one the app means to show. What a
    test waits for before reading the screen or asserting that something did *not* happen, where no one state
    says the app is done. Not a wait for a thread worker's answer: wait on what that answer shows, with
    :func:`until`. Fails after ``timeout`` s each.

    ``pilot.pause()`` was the stand-in (tuiwait44: 38 of them in tests/tui): it waits for what was queued when it
    was called, then takes a process short of CPU for idle (``wait_for_idle``), so it can return with a key's turn
    still on its way (a turn re-posts itself widget to widget), a worker (the command line's suggestion, the
    palette's search) still running or a layout not yet redone. Pinned to one CPU beside 4 busy loops, both trees at
    once, 31 of the tests that used it, 3 rounds: 93 of 93 passed with ``pilot.pause()`` and 93 of 93 with this
    wait; the gain is a wait on state rather than on the machine's load, not a failure seen here."""
    await handled(pilot)
    held = [""]

    def probe() -> bool:
        held[0] = unquiet(pilot.app)
        return not held[0]

    try:
        await until(pilot, probe, timeout=timeout, what="the app quiet (nothing queued or pending)")
    except AssertionError as exc:  # what held it, at the last look (load57: "(last: False)" said nothing)
        raise AssertionError(f"{exc}; still pending: {held[0]}") from None


def quiet(app: Any) -> bool:
    """Whether no key is on its way, no worker of the app (a search, a suggestion, a fetch) is pending or running,
    no animation (a scroll) is under way or scheduled, nothing is queued at ``app``, its screen or a widget on it
    (:func:`~gamead_cli.tui.typeahead._queued`) and none of them has a refresh of its styles, scroll, paint, layout
    or children pending."""
    return not unquiet(app)


def unquiet(app: Any) -> str:
    """What keeps ``app`` from being :func:`quiet` (``"worker fetch running"``, ``"queued at DlqTable: Timer"``,
    ``"DlqTable: _layout_required"``…), the first found; ``""`` when nothing does."""
    from textual.worker import WorkerState

    from gamead_cli.tui.typeahead import _queued

    screen = app.screen
    if not all_handled(app):
        return "a key on its way"
    if screen._dirty_widgets or app.animator._animations or app.animator._scheduled:
        return "dirty widgets or an animation"
    for worker in app.workers:
        if worker.state in (WorkerState.PENDING, WorkerState.RUNNING):
            return f"worker {worker.name!r} {worker.state.name.lower()}"
    flags = ("_layout_required", "_repaint_required", "_scroll_required", "_recompose_required",
             "_refresh_styles_required")
    for node in (app, *screen.walk_children(with_self=True)):
        if _queued(node):
            waiting = [type(m).__name__ for m in node._message_queue.values]  # textual._queue.Queue's deque
            pending = getattr(node, "_pending_message", None)
            return f"queued at {type(node).__name__}: {waiting}, pending {type(pending).__name__}"
        if _shown(node) and (raised := [flag for flag in flags if getattr(node, flag, False)]):
            return f"{type(node).__name__}: {', '.join(raised)}"
    return ""


def _shown(node: Any) -> bool:
    """Whether ``node`` and every widget above it are displayed: a hidden input's pending repaint (the filter bar,
    the command line) is no frame to wait for, and only a message to it would clear the flag (``pilot.pause``'s
    callback to every widget did, at every look: tui54)."""
    return all(getattr(n, "display", True) for n in (node, *getattr(node, "ancestors", ())))


def all_handled(app: Any) -> bool:
    """Whether ``app.typeahead`` holds no key and has none on its way (each handled all the way up): what a test
    waits for before asserting that the keys of a burst did nothing, or nothing more."""
    return not app.typeahead.held and app.typeahead._since is None


def on_recording(recorded: dict[str, Any], size: tuple[int, int],
                 scenario: Callable[[Any, Pilot[Any]], Awaitable[None]], **kw: Any) -> None:
    """Run ``scenario(app, pilot)`` on a dashboard of ``size`` (columns, rows) fed ``recorded`` (the recording,
    never refreshed), once its stats and dead letters are on screen; ``kw``: more :class:`DashboardApp` arguments
    (``readonly=True``)."""
    import asyncio

    from gamead_cli.tui.app import DashboardApp
    from gamead_cli.tui.source_recorded import RecordedSource
    from gamead_cli.tui.widgets_tables import DlqTable

    async def main() -> None:
        app = DashboardApp(RecordedSource(recorded), refresh=3600, **kw)
        async with app.run_test(size=size) as pilot:
            await until(pilot, lambda: app.stats is not None and app.query_one(DlqTable).row_count > 0,
                        what="the recording on screen")
            await settled(pilot)
            await scenario(app, pilot)

    asyncio.run(main())
