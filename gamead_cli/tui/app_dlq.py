"""Replaying and purging dead letters from the dashboard (mixed into :class:`~gamead_cli.tui.app.DashboardApp`):
the marked entries (``r`` / ``x``) or every entry a filter matches (``:replay class=X``), each after the typed
confirmation, then one server-side job whose progress shows in the job line."""

from __future__ import annotations

import asyncio
from typing import Any

from textual import work

from gamead_cli.tui.screens import TypedConfirmScreen
from gamead_cli.tui.widgets_tables import DlqTable
from gamead_core.errors import error_text


class DlqActions:
    """``r`` / ``x`` and ``:replay`` / ``:purge``. Uses the app's ``source``, ``notify`` and ``refresh_now``."""

    def _dlq_selection(self) -> list[str]:
        return self.query_one(DlqTable).selection()

    def action_replay(self) -> None:
        self._confirm_dlq("replay")

    def action_purge(self) -> None:
        self._confirm_dlq("purge")

    @staticmethod
    def _question(verb: str, n: int, what: str = "") -> str:
        s, their = ("s", "their") if n != 1 else ("", "its")
        if verb == "replay":
            return f"Replay {n:,} dead-lettered ad{s}{what} to {their} original priority?"
        return f"Purge {n:,} dead-lettered ad{s}{what} for good? This cannot be undone."

    def _confirm_dlq(self, verb: str) -> None:
        ids = self._dlq_selection()
        if not ids:
            self.notify(f"nothing to {verb}: select a DLQ entry (tab to the DLQ, space marks)", severity="warning")
            return
        shown = ", ".join(ids[:5]) + (f" … (+{len(ids) - 5})" if len(ids) > 5 else "")

        def answered(yes: bool | None) -> None:
            if yes:
                self.dlq_action(verb, ids)

        self.push_screen(TypedConfirmScreen(self._question(verb, len(ids)), len(ids), shown), answered)

    async def confirm_filter(self, verb: str, flt: dict[str, Any]) -> None:
        """``:replay class=X``: count what the filter matches now (a dry run), then the typed confirmation. One
        asked for meanwhile counts once this one's confirmation is answered (keys54: it cancelled this count, whose
        confirmation never showed). Run by ``in_turn("dlq-count", …)``."""
        try:
            matched = await asyncio.to_thread(self.source.count, flt)
        except Exception as exc:  # noqa: BLE001 - say so, keep running
            self.notify(f"{verb} failed: {error_text(exc)}", severity="error", timeout=8)
            return
        what = " of class " + str(flt.get("errorClass"))
        if not matched:
            self.notify(f"nothing to {verb}: no DLQ entry{what}", severity="warning")
            return
        screen = TypedConfirmScreen(self._question(verb, matched, what), matched,
                                    f"one server-side job over every entry{what} (matched now)")
        if await self.push_screen(screen, wait_for_dismiss=True):
            self.dlq_action(verb, None, flt)

    @work(group="dlq-action", exit_on_error=False)
    async def dlq_action(self, verb: str, ids: list[str] | None, flt: dict[str, Any] | None = None) -> None:
        """One server-side job over ``ids`` (or every entry ``flt`` matches); its progress shows in the job
        line as the stream reports it, its audit record in the audit panel at the next refresh."""
        call = self.source.replay if verb == "replay" else self.source.purge

        def progress(job: dict[str, Any]) -> None:
            self.call_from_thread(setattr, self, "job", dict(job))

        try:
            result = await asyncio.to_thread(call, ids, flt=flt, progress=progress)
        except Exception as exc:  # noqa: BLE001 - say so, keep running
            self.notify(f"{verb} failed: {error_text(exc)}", severity="error", timeout=8)
            return
        done = result.get("replayed" if verb == "replay" else "purged", 0)
        extra = ""
        if verb == "replay" and (result.get("skipped") or result.get("failed")):
            extra = f" (skipped {result.get('skipped', 0)}, failed {result.get('failed', 0)})"
        past = "replayed" if verb == "replay" else "purged"
        of = f" of {len(ids)}" if ids is not None else f" of class {(flt or {}).get('errorClass')}"
        self.notify(f"{past} {done}{of}{extra}", severity="information", timeout=4)
        # past acting, a replay's job follows its ads (running, phase following): each refresh reads it to its end
        self._job_followed = str(result["jobId"]) if result.get("state") in ("queued", "running") else None
        self.query_one(DlqTable).marked.clear()
        self.refresh_now(dlq=True)
