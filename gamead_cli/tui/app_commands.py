"""The dashboard's command line and palette (mixed into :class:`~gamead_cli.tui.app.DashboardApp`): running one
command (``:dlq``, ``:level 2``, ``:logs``, ``:doctor``, ``:scale``…; a bad one is a one-line warning) and the
screens they open: a level's oldest ads, an ad's record, the audit trail, a dead letter's details, a log."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from functools import partial

from textual import work

from gamead_cli.doctor_verdict import holds, warnings
from gamead_cli.tui import commands, view_audit, view_figures, view_queue, view_tables
from gamead_cli.tui.commands import CommandError
from gamead_cli.tui.logs import LogsUnavailable, follower
from gamead_cli.tui.screens import CommandLine, LevelScreen, LogScreen, RecordScreen
from gamead_cli.tui.turns import Turns
from gamead_cli.tui.widgets_help import DetailScreen
from gamead_cli.tui.widgets_tables import DlqTable, NodesTable
from gamead_core.errors import error_text

#: ads a level's drill-down lists (``GET /v1/levels/{level}/oldest``)
LEVEL_READ = 50


class CommandActions:
    """``:`` commands, ``l`` on a node and the drill-downs. Uses the app's reactives, ``source``, ``log_dir``,
    ``readonly`` and ``notify``."""

    def turns(self, kind: str) -> Turns:
        """The requests of ``kind`` (:data:`gamead_cli.tui.turns.WAITING`) taken in turn."""
        return self._turns.setdefault(kind, Turns(kind))

    def in_turn(self, kind: str, what: str, start: Callable[[], Awaitable[None]]) -> None:
        """Run a request of ``kind`` (``start()``: its coroutine, run in a worker of group ``kind``) now, or after
        those of its kind asked before it; the line that says why not, when too many wait."""
        refusal = self.turns(kind).ask(
            lambda: self.is_running and self.run_worker(self._in_turn(kind, start), group=kind, exit_on_error=False),
            what)
        if refusal is not None:
            self.notify(refusal, severity="warning", timeout=8)

    async def _in_turn(self, kind: str, start: Callable[[], Awaitable[None]]) -> None:
        """``start()``'s request, then the next of its kind (:meth:`Turns.done`), however it ended."""
        try:
            await start()
        finally:
            self.turns(kind).done()

    def error_classes(self) -> list[str]:
        """The error classes of the DLQ entries in view, most frequent first (for completion)."""
        items = [i for i in (self.dlq or {}).get("items") or [] if isinstance(i, Mapping)]
        return [cls for cls, _ in view_tables.error_groups(items) if cls != "?"]

    def node_ids(self) -> list[str]:
        """The ids of the nodes in view (for ``:logs`` completion)."""
        return [str(n.get("id")) for n in self.nodes or () if isinstance(n, Mapping) and n.get("id")]

    def open_logs(self, args: list[str]) -> None:
        """``:logs WORKER`` / ``:logs ad AD_ID`` / ``l`` on a node: the live tail, or one line saying why not."""
        try:
            tail = follower(self.log_dir, args)
        except LogsUnavailable as exc:
            self.notify(str(exc), severity="warning", timeout=6)
            return
        self.push_screen(LogScreen(tail, every=self.refresh_seconds))

    def action_command(self) -> None:
        self.open_command_line("")

    def open_command_line(self, text: str) -> None:
        line = self.query_one(CommandLine)
        line.value = text
        line.cursor_position = len(text)
        line.add_class("-shown")
        line.focus()

    def run_command_line(self, text: str) -> None:
        """Run one command line (``:`` or the palette); a bad one is a one-line warning, never an exception."""
        try:
            cmd = commands.parse(text)
        except CommandError as exc:
            self.notify(str(exc), severity="warning", timeout=5)
            return
        if cmd.acts and self.readonly:
            self.notify(f"read-only: {cmd.name} is off (--readonly, or a token that may not act)",
                        severity="warning", timeout=5)
            return
        if cmd.name == "dlq":
            self.query_one(DlqTable).focus()
        elif cmd.name == "workers":
            self.query_one(NodesTable).focus()
        elif cmd.name == "level":
            self.open_level(cmd.args["level"])
        elif cmd.name == "audit":
            self.in_turn("details", ":audit", self.show_audit)
        elif cmd.name == "logs":
            self.open_logs(["ad", cmd.args["ad_id"]] if "ad_id" in cmd.args else [cmd.args["worker"]])
        elif cmd.name == "doctor":
            self.in_turn("doctor", ":doctor", self.run_doctor)
        elif cmd.name == "scale":
            replicas, seconds = cmd.args["replicas"], cmd.args["seconds"]
            self.in_turn("scale", f":scale {replicas} {seconds}", partial(self.scale, replicas, seconds))
        elif cmd.name in ("replay", "purge"):
            flt = cmd.args["filter"]
            self.in_turn("dlq-count", f":{cmd.name} class={flt.get('errorClass')}",
                         partial(self.confirm_filter, cmd.name, flt))
        elif cmd.name == "pause":
            self.action_pause()
        elif cmd.name == "help":
            self.action_help()
        elif cmd.name == "quit":
            self.exit()

    # --- drill-down --------------------------------------------------------------------------------------

    def open_level(self, level: int) -> None:
        screen = LevelScreen(level)
        self.push_screen(screen)
        self.load_level(screen)

    @work(group="level", exit_on_error=False)
    async def load_level(self, screen: LevelScreen) -> None:
        """Fill ``screen`` with its level's oldest ads, however many levels are opened meanwhile: each screen reads
        its own (a read for the next level cancelled this one, exclusive: escape from the next went back to
        ``reading its ads…`` for ever: keys54); a screen closed meanwhile is left as it is."""
        level = screen.level
        try:
            page = await asyncio.to_thread(self.source.oldest, level, LEVEL_READ)
        except Exception as exc:  # noqa: BLE001 - say so on the screen
            if screen.is_attached:
                screen.show([], f"P{level}: cannot read its ads: {error_text(exc)}")
            return
        if not screen.is_attached:
            return
        rows = view_queue.level_ads(page.get("items") or [])
        how = (" (from the newest records: this API has no /v1/levels)" if page.get("partial")
               else "")
        counts = (f"P{level}: {view_figures.num(page.get('pending'))} pending, "
                  f"{view_figures.num(page.get('ackPending'))} ack pending")
        note = (f"{counts}; the oldest {len(rows)}, oldest first{how} · enter: the ad's record" if rows
                else f"{counts}: no ad of P{level} waits or is held now{how}")  # words, not "the oldest 0" (regress41)
        screen.show(rows, note)

    def open_ad(self, ad_id: str) -> None:
        """Enter on an ad of a level's list: its record, after the records asked for before it."""
        self.in_turn("details", f"ad {ad_id}", partial(self.show_ad, ad_id))

    async def show_ad(self, ad_id: str) -> None:
        try:
            record = await asyncio.to_thread(self.source.ad, ad_id)
        except Exception as exc:  # noqa: BLE001 - say so, keep running
            self.notify(f"ad {ad_id}: {error_text(exc)}", severity="warning")
            return
        self.push_screen(RecordScreen(f"ad {ad_id}", view_tables.details_view(record)))

    async def show_audit(self) -> None:
        try:
            audit = await asyncio.to_thread(self.source.audit, 50)
        except Exception as exc:  # noqa: BLE001 - say so, keep running
            self.notify(f"audit trail: {error_text(exc)}", severity="warning")
            return
        self.push_screen(RecordScreen("audit", view_audit.audit_table(audit, header=True, limit=50)))

    async def run_doctor(self) -> None:
        """``:doctor``: one full check; its verdict and time stay in the header until the next ``:doctor``. One
        asked for while one runs checks after it (keys54: it cancelled the one running, whose verdict was lost)."""
        self.notify("doctor: checking every invariant…", timeout=3)
        try:
            verdict = await asyncio.to_thread(self.source.doctor)
        except Exception as exc:  # noqa: BLE001 - shown in the header
            self.doctor_error = error_text(exc)
            return
        self.doctor_error = None
        self.doctor = verdict
        problems, warned = verdict.get("problems") or 0, warnings(verdict)
        if holds(verdict):  # gamead doctor's exit 0
            self.notify("doctor: every invariant holds" + (f" ({warned} warning(s): see :doctor's findings)"
                                                           if warned else ""),
                        severity="warning" if warned else "information", timeout=5)
        else:
            self.notify(f"doctor: {problems} problem(s)", severity="warning", timeout=5)

    async def scale(self, replicas: int, seconds: int) -> None:
        """``:scale N S``, sent after the ones asked for before it have answered: the API gets them in the order
        typed, the last one holds (keys54: each cancelled the one on its way, whose request went all the same, at
        once beside the next: either might have been the last the API took, and its answer was not shown)."""
        try:
            answer = await asyncio.to_thread(self.source.scale, replicas, seconds)
        except Exception as exc:  # noqa: BLE001 - say so, keep running
            self.notify(f"scale failed: {error_text(exc)}", severity="error", timeout=8)
            return
        note = f" ({answer['note']})" if answer.get("note") else ""
        self.notify(f"holding {answer.get('effectiveReplicas', replicas)} workers for {seconds:,}s{note}",
                    timeout=5)
        self.refresh_now(dlq=True)

    def open_dlq_entry(self, entry_id: str) -> None:
        """Enter on a dead letter: its details, after the records asked for before it."""
        self.in_turn("details", f"dead letter {entry_id}", partial(self.show_dlq_entry, entry_id))

    async def show_dlq_entry(self, entry_id: str) -> None:
        try:
            entry = await asyncio.to_thread(self.source.dlq_entry, entry_id)
        except Exception:  # noqa: BLE001 - fall back to the row we already have
            entry = next((e for e in (self.dlq or {}).get("items") or [] if view_tables.dlq_id(e) == entry_id), None)
        if entry is None:
            self.notify(f"DLQ entry {entry_id} is gone", severity="warning")
            return
        self.push_screen(DetailScreen(f"dead letter {entry_id}", view_tables.details_view(entry)))
