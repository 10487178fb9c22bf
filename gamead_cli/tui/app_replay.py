"""Replaying a recording in the dashboard (``gamead top --replay FILE``; mixed into
:class:`~gamead_cli.tui.app.DashboardApp`): the next frame at each tick, ``.`` / ``,`` step one frame, ``+`` / ``-``
change the speed, and the header says which frame shows and when it was received."""

from __future__ import annotations

import asyncio

from gamead_cli.formats import short_time
from gamead_core.errors import error_text

#: the replay's speeds (``+``/``-``): frames per refresh period
SPEEDS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)


class ReplayControls:
    """The replay's frames and speed. Uses the app's ``player``, ``speed``, ``paused`` and ``replaying``."""

    async def play(self, step: int) -> None:
        """Show the recording's frame ``step`` away from the current one; pause at either end."""
        player = self.player
        assert player is not None
        try:
            target = player.position + step
            if target >= len(player):
                if not self.paused:
                    self.paused = True
                    self.notify("end of the recording: , steps back, p plays it again", timeout=6)
                return
            snap = await asyncio.to_thread(player.frame, target)
            self.apply(snap)
            self._show_position()
        except Exception as exc:  # noqa: BLE001 - a bad recording is a banner, not a traceback
            self.error = f"⚠ cannot replay: {error_text(exc)}"
        finally:
            self._polled()

    def _show_position(self) -> None:
        """The header's ``REPLAY frame 12/300 ×2 · received 12:34:56``."""
        player = self.player
        if player is None:
            return
        at = f" · received {short_time(_iso(player.at))}" if player.at else ""
        speed = f" ×{self.speed:g}" if self.speed != 1 else ""
        self.replaying = f"frame {player.position + 1}/{len(player)}{speed}{at}"

    def action_step(self, step: int) -> None:
        """Replay: pause and show the next (``.``) or the previous (``,``) frame."""
        self.paused = True
        if not self._busy:
            self._busy = True
            self.run_worker(self.play(step), group="poll", exclusive=True, exit_on_error=False)

    def _set_speed(self, faster: bool) -> None:
        i = SPEEDS.index(self.speed) if self.speed in SPEEDS else SPEEDS.index(1.0)
        self.speed = SPEEDS[min(len(SPEEDS) - 1, i + 1) if faster else max(0, i - 1)]
        self._timer.stop()
        self._timer = self.set_interval(self.refresh_seconds / self.speed, self.tick)
        self._show_position()

    def action_faster(self) -> None:
        self._set_speed(True)

    def action_slower(self) -> None:
        self._set_speed(False)


def _iso(epoch: float | None) -> str | None:
    from datetime import datetime, timezone

    return None if epoch is None else datetime.fromtimestamp(epoch, timezone.utc).isoformat()
