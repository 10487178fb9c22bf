"""attack46 F8: `gamead scale set 3 --for 2d` said `override: 3 worker(s) until 20:21:58 UTC`, `scale status`
`override  3 until 20:21:58 UTC (1d23h left)` and `scale clear` `it was 3 worker(s) until 20:21:58 UTC`: a time of
today, just past, for an override ending in two days, while the reason line beside it said `until 2026-12-07
20:21:58 UTC` (regress44 F5). The scale verbs now write a time not of today (the service's clock) with its date."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from rich.console import Console

from gamead_cli.commands.scale import leader_text, override_text, status_view


def iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def test_an_override_ending_another_day_is_said_with_its_date() -> None:
    now = datetime.now(timezone.utc)
    later = now + timedelta(days=2)
    ov = {"replicas": 3, "until": iso(later), "setAt": iso(now), "setBy": "op", "remainingSeconds": 172800.0}
    said = override_text(ov)
    assert said.startswith(f"3 workers until {later:%Y-%m-%d %H:%M:%S} UTC, set by op at {now:%H:%M:%S} UTC"), said
    console = Console(width=200, record=True)
    console.print(status_view({"backend": "local", "override": ov, "current": 3, "desired": 3}))
    shown = " ".join(console.export_text().split())
    assert f"override 3 workers until {later:%Y-%m-%d %H:%M:%S} UTC (2d left)" in shown
    assert f"since {now - timedelta(days=1):%Y-%m-%d %H:%M:%S} UTC" in leader_text(
        {"id": "up-vm-1", "since": iso(now - timedelta(days=1))}).plain
