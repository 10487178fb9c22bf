"""Replaying a recording in the dashboard (``gamead top --replay FILE``; mixed into
:class:`~gamead_cli.tui.app.DashboardApp`): the next frame at each tick, ``.`` / ``,`` step one frame, ``+`` / ``-``
change the speed, and the header says which frame shows and when it was received."""

from __future__ import annotations

import asyncio

from textual import work

from gamead_cli.formats import short_time
from gamead_core.errors import error_text

#: what a step past the recording's last frame says (and playing on to it)
END = "end of the recording: , steps back, p plays it again"
#: what a step back from its first frame says
START = "start of the recording: . steps forward"
#: the replay's speeds (``+``/``-``): frames per refresh period
SPEEDS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)


class ReplayControls:
    """The replay's frames and speed. Uses the app's ``player``, ``speed``, ``paused`` and ``replaying``."""

    async def play(self, step: int, *, stepped: bool = False) -> None:
        """Show the recording's frame ``step`` away from the current one; pause at the end. ``stepped``: the
        operator's ``.`` / ``,`` (``step`` of them, net): steps past either end show that end's frame and say so."""
        player = self.player
        assert player is not None
        try:
            target = player.position + step
            if stepped:
                target, past = clamped(target, len(player))
                if past:
                    self.notify(past, timeout=4)
                if target == player.position:
                    return
            elif target >= len(player):
                if not self.paused:
                    self.paused = True
                    self.notify(END, timeout=6)
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
        """Replay: pause and show the next (``.``) or the previous (``,``) frame. Steps pressed while a frame is on
        its way are counted and taken together once it is shown (keys54: they were dropped: ``...`` typed ahead of
        a slow frame moved one frame)."""
        self.paused = True
        if self.player is None:
            return
        self._steps = max(-len(self.player), min(len(self.player), self._steps + step))
        if not self._busy:
            self._busy = True
            self.take_steps()

    @work(group="poll", exit_on_error=False)
    async def take_steps(self) -> None:
        """The frames stepped so far, as one move (``_polled`` at its end: steps pressed meanwhile follow)."""
        steps, self._steps = self._steps, 0
        await self.play(steps, stepped=True)

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


def clamped(target: int, frames: int) -> tuple[int, str | None]:
    """The frame a step to ``target`` shows in a recording of ``frames`` frames, and what to say when the step went
    past either end (None when it did not). Pure."""
    if target >= frames:
        return frames - 1, END
    if target < 0:
        return 0, START
    return target, None


def _iso(epoch: float | None) -> str | None:
    from datetime import datetime, timezone

    return None if epoch is None else datetime.fromtimestamp(epoch, timezone.utc).isoformat()
