"""keys54: an operator's key or command given while the dashboard is busy with one of its kind runs after it, in
the order given, or says on screen why not; it was dropped: ``.`` / ``,`` while a replay's frame loaded did nothing,
and every ``exclusive`` worker (``:scale``, ``:doctor``, ``:replay class=X``, enter on a dead letter, a level opened
over another) cancelled the request on its way, whose thread went on asking the API while its answer was lost."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

from gamead_cli.tui.app import DashboardApp
from gamead_cli.tui.recording import Player
from gamead_cli.tui.screens import LevelScreen, TypedConfirmScreen
from gamead_cli.tui.source_recorded import RecordedSource
from gamead_cli.tui.turns import Turns
from gamead_cli.tui.widgets_help import DetailScreen
from gamead_cli.tui.widgets_tables import DlqTable
from tests.tui.conftest import burst, handled, press, raised_toasts, screen_text, until
from tests.tui.test_command_mode import ADS
from tests.tui.test_record_replay import p1_waiting, recording


class Gates:
    """Calls that wait while their name is held (a slow API or disk); counts them started and at once."""

    def __init__(self) -> None:
        self.held: dict[str, threading.Event] = {}
        self.lock = threading.Lock()
        self.started: dict[str, list[Any]] = {}
        self.now: dict[str, int] = {}
        self.most: dict[str, int] = {}

    def hold(self, name: str) -> None:
        self.held[name] = threading.Event()

    def release(self) -> None:
        for gate in self.held.values():
            gate.set()

    def through(self, name: str, arg: Any = None) -> None:
        with self.lock:
            self.started.setdefault(name, []).append(arg)
            self.now[name] = self.now.get(name, 0) + 1
            self.most[name] = max(self.most.get(name, 0), self.now[name])
        try:
            if name in self.held:
                self.held[name].wait(60)
        finally:
            with self.lock:
                self.now[name] -= 1


class Slow(RecordedSource):
    def __init__(self, recorded: dict[str, Any]) -> None:
        super().__init__(recorded)
        self.gates = Gates()

    def scale(self, replicas: int, seconds: int) -> dict[str, Any]:
        self.gates.through("scale", replicas)
        return super().scale(replicas, seconds)

    def doctor(self) -> dict[str, Any]:
        self.gates.through("doctor")
        return super().doctor()

    def count(self, flt: dict[str, Any]) -> int:
        self.gates.through("count", flt.get("errorClass"))
        return super().count(flt)

    def dlq_entry(self, entry_id: str) -> dict[str, Any]:
        self.gates.through("dlq_entry", entry_id)
        return super().dlq_entry(entry_id)

    def oldest(self, level: int, limit: int = 50) -> dict[str, Any]:
        self.gates.through("oldest", level)
        return super().oldest(level, limit)


def run(source: RecordedSource, scenario: Any) -> None:
    async def main() -> None:
        app = DashboardApp(source, refresh=3600)
        async with app.run_test(size=(120, 40)) as pilot:
            await until(pilot, lambda: app.stats is not None and app.query_one(DlqTable).row_count > 0,
                        what="the first refresh")
            try:
                await scenario(app, pilot)
            finally:
                source.gates.release()  # type: ignore[attr-defined]

    asyncio.run(main())


def started(source: Slow, name: str, n: int) -> bool:
    return len(source.gates.started.get(name, [])) >= n


def test_steps_pressed_while_a_frame_loads_are_all_taken(tmp_path: Path, recorded: dict[str, Any]) -> None:
    """``.`` then ``..`` while its frame loads: three frames on (was one: the two pressed meanwhile were dropped);
    then ``,`` past the start shows the first frame and says so."""
    recording(tmp_path / "s.jsonl", recorded, 6)
    gate = threading.Event()
    gate.set()

    class SlowPlayer(Player):
        def frame(self, i: int) -> Any:
            gate.wait(60)
            return super().frame(i)

    player = SlowPlayer(tmp_path / "s.jsonl")

    async def main() -> None:
        app = DashboardApp(player, refresh=3600, player=player)  # type: ignore[arg-type]
        async with app.run_test(size=(120, 40)) as pilot:
            try:
                await until(pilot, lambda: p1_waiting(app) == "100" and not app._busy, what="the first frame")
                gate.clear()
                await press(pilot, "full_stop")
                await until(pilot, lambda: app._busy, what="the frame on its way")
                await burst(pilot, "full_stop", "full_stop")
                await handled(pilot)
                gate.set()
                await until(pilot, lambda: p1_waiting(app) == "103" and not app._busy, what="three frames on")
                await burst(pilot, *["comma"] * 5)
                await until(pilot, lambda: p1_waiting(app) == "100" and not app._busy, what="the first frame")
                await until(pilot, lambda: any("start of the recording" in t for t in raised_toasts(app)),
                            what="the start said")
            finally:
                gate.set()

    asyncio.run(main())


async def second_while_first_held(pilot: Any, source: Slow, kind: str, first: str, second: str) -> None:
    """``:first`` typed and its ``kind`` request held at the gate once sent; ``:second`` typed and handled
    meanwhile; then the gate released."""
    await press(pilot, "colon", *first, "enter")
    await until(pilot, lambda: started(source, kind, 1), what=f"the first {kind} request sent")
    await press(pilot, "colon", *second, "enter")
    await handled(pilot)
    source.gates.release()


def test_scale_asked_twice_goes_in_order_and_both_answers_show(recorded: dict[str, Any]) -> None:
    """``:scale 3`` then ``:scale 5`` while the first is on its way: one request at a time, in the order typed (the
    last typed holds), each answer shown. Was: both sent at once, the first's answer dropped."""
    source = Slow(recorded)
    source.gates.hold("scale")

    async def scenario(app: DashboardApp, pilot: Any) -> None:
        await second_while_first_held(pilot, source, "scale", "scale 3 for 60s", "scale 5 for 60s")
        await until(pilot, lambda: sum("holding" in t for t in raised_toasts(app)) == 2, what="both answers")
        assert [t for t in raised_toasts(app) if "holding" in t] == ["holding 3 workers for 60s",
                                                                     "holding 5 workers for 60s"]
        assert source.gates.started["scale"] == [3, 5] and source.gates.most["scale"] == 1

    run(source, scenario)


def test_doctor_asked_while_one_runs_checks_after_it_and_one_more_is_refused_on_screen(
        recorded: dict[str, Any]) -> None:
    source = Slow(recorded)
    source.gates.hold("doctor")

    async def scenario(app: DashboardApp, pilot: Any) -> None:
        await press(pilot, "colon", *"doctor", "enter")
        await until(pilot, lambda: started(source, "doctor", 1), what="the first check")
        await press(pilot, "colon", *"doctor", "enter", "colon", *"doctor", "enter")
        await until(pilot, lambda: any(":doctor: not done" in t for t in raised_toasts(app)),
                    what="the third :doctor refused on screen")
        source.gates.release()
        await until(pilot, lambda: sum("every invariant holds" in t for t in raised_toasts(app)) == 2,
                    what="both verdicts")
        assert len(source.gates.started["doctor"]) == 2 and source.gates.most["doctor"] == 1

    run(source, scenario)


def test_a_filter_replay_asked_while_another_counts_asks_its_own_confirmation_after(
        recorded: dict[str, Any]) -> None:
    """``:replay class=TimeoutError`` then ``:purge class=ValueError`` while the first counts: the replay's
    confirmation, then (escape) the purge's. Was: the replay's count cancelled, its confirmation never shown."""
    source = Slow(recorded)
    source.gates.hold("count")

    async def scenario(app: DashboardApp, pilot: Any) -> None:
        await second_while_first_held(pilot, source, "count", "replay class=TimeoutError", "purge class=ValueError")
        first = await until(pilot, lambda: isinstance(app.screen, TypedConfirmScreen) and app.screen,
                            what="a confirmation")
        assert "Replay 3 dead-lettered ads of class TimeoutError" in first.question
        await press(pilot, "escape")
        second = await until(pilot, lambda: isinstance(app.screen, TypedConfirmScreen) and app.screen is not first
                             and app.screen, what="the second confirmation")
        assert "Purge 3 dead-lettered ads of class ValueError" in second.question
        assert source.gates.started["count"] == ["TimeoutError", "ValueError"] and source.calls == []

    run(source, scenario)


def test_enter_on_a_dead_letter_then_another_opens_both(recorded: dict[str, Any]) -> None:
    """Enter on the first dead letter, down, enter on the second while the first is read: both open, the second
    on top (escape: the first). Was: the first's read cancelled, its details never shown."""
    source = Slow(recorded)
    source.gates.hold("dlq_entry")

    def opened(app: DashboardApp) -> list[str]:
        return [s.title_text for s in app.screen_stack if isinstance(s, DetailScreen)]

    async def scenario(app: DashboardApp, pilot: Any) -> None:
        app.query_one(DlqTable).focus()
        await press(pilot, "enter")
        await until(pilot, lambda: started(source, "dlq_entry", 1), what="the first entry read")
        await press(pilot, "down", "enter")
        await handled(pilot)
        source.gates.release()
        await until(pilot, lambda: len(opened(app)) == 2, what="both open")
        asked = source.gates.started["dlq_entry"]
        assert len(set(asked)) == 2 and opened(app) == [f"dead letter {i}" for i in asked]  # the second on top
        await press(pilot, "escape")
        await until(pilot, lambda: opened(app) == [f"dead letter {asked[0]}"] and asked[0] in screen_text(app),
                    what="the first under it")

    run(source, scenario)


def test_a_level_opened_over_another_leaves_the_first_one_read(recorded: dict[str, Any]) -> None:
    """P2 opened, then P3 over it from the palette (ctrl+p works on a drill-down) while P2's ads are read: escape
    from P3 shows P2's ads. Was: P2's read cancelled by P3's, P2 said ``reading its ads…`` for ever."""
    source = Slow({**recorded, "ads": ADS})
    source.gates.hold("oldest")

    async def scenario(app: DashboardApp, pilot: Any) -> None:
        await press(pilot, "colon", *"level 2", "enter")
        p2 = await until(pilot, lambda: isinstance(app.screen, LevelScreen) and app.screen, what="P2 open")
        await until(pilot, lambda: started(source, "oldest", 1), what="P2's read")
        app.run_command_line("level 3")  # as the palette's hit does
        await until(pilot, lambda: isinstance(app.screen, LevelScreen) and app.screen is not p2, what="P3 open")
        source.gates.release()
        await until(pilot, lambda: app.screen.loaded, what="P3 read")
        await press(pilot, "escape")
        await until(pilot, lambda: app.screen is p2 and p2.loaded and "Oldest waiting" in screen_text(app),
                    what="P2's ads")

    run(source, scenario)


def test_turns_queue_in_order_up_to_their_bound_then_say_why_not() -> None:
    ran: list[int] = []
    turns = Turns("doctor")  # one may wait
    assert turns.ask(lambda: ran.append(1), ":doctor") is None and ran == [1]
    assert turns.ask(lambda: ran.append(2), ":doctor") is None and ran == [1]
    refusal = turns.ask(lambda: ran.append(3), ":doctor")
    assert refusal is not None and refusal.startswith(":doctor: not done — 1 earlier request of its kind still waits")
    turns.done()
    assert ran == [1, 2] and turns.busy
    turns.done()
    assert not turns.busy and turns.ask(lambda: ran.append(4), ":doctor") is None and ran == [1, 2, 4]
