"""What ``gamead up``'s console says as the settings it started with stop or start being in force (attack32c F1):
said when the API's ``/readyz`` ``differs`` appear or change, once more when none are left, never on a reading
that does not say (an API not set up yet)."""

from __future__ import annotations

import shlex

from gamead_cli.commands.up_drift import DriftNote, restart_command
from gamead_core.config import load_settings
from gamead_core.scaling.ready_watch import reading_of

ACK = "queue.ack_wait: live 30 s on consumers gamead-p1, gamead-p2, this node's 10 s"
TTL = "registry.ttl: live 10 s on bucket gamead_registry, this node's 5 s"


def test_up_says_the_settings_not_in_force_when_they_appear_or_change_and_once_when_all_are() -> None:
    settings = load_settings(None, queue={"ack_wait": 10}, registry={"ttl": 5, "heartbeat_interval": 1})
    note = DriftNote(settings, "gamead", "/d/logs/api.log")
    assert note.observe_reading(reading_of(200, {"status": "ready", "differs": []})) is None  # nothing to say
    first = note.observe_reading(reading_of(200, {"status": "degraded", "differs": [ACK]}))
    assert first is not None and not first.good
    assert first.text.startswith("1 setting gamead up started with is not in force")
    assert "queue.ack_wait: live 30 s on consumers gamead-p1, gamead-p2, this stack's 10 s" in first.text
    assert "GAMEAD_QUEUE__LOWER_LIMITS=true GAMEAD_QUEUE__ACK_WAIT=10 " in first.text
    assert note.observe_reading(reading_of(200, {"differs": [ACK]})) is None  # said once
    assert note.observe_reading(reading_of(503, {"checks": {"topology": "unknown: not set up yet"}})) is None
    changed = note.observe_reading(reading_of(200, {"differs": [ACK, TTL]}))  # another node's start changed one
    assert changed is not None and "GAMEAD_REGISTRY__TTL=5" in changed.text and "2 settings" in changed.text
    back = note.observe_reading(reading_of(200, {"differs": []}))
    assert back is not None and back.good and "in force now" in back.text
    assert note.observe_reading(reading_of(200, {"differs": []})) is None


def test_with_lower_limits_already_on_the_line_says_why_and_offers_no_command() -> None:
    note = DriftNote(load_settings(None, queue={"lower_limits": True}), "gamead", "/d/logs/api.log")
    said = note.observe(("queue.max_msgs: live 1,000 on stream GAMEAD_ADS, this node's 3",))
    assert said is not None and "though queue.lower_limits is on" in said.text
    assert "/d/logs/api.log says which and why" in said.text and "then run" not in said.text


def test_the_restart_command_runs_this_up_again_where_it_ran_with_the_settings_quoted() -> None:
    settings = load_settings(None, dlq={"max_msgs": 500}, queue={"ack_wait": 2.5})
    command = restart_command(settings, ["dlq.max_msgs", "queue.ack_wait", "dlq.max_msgs"], "/v/bin/gamead",
                              args=["up", "--data-dir", "my data"], cwd="/home/me/proj dir")
    assert shlex.split(command) == ["cd", "/home/me/proj dir", "&&", "GAMEAD_QUEUE__LOWER_LIMITS=true",
                                    "GAMEAD_DLQ__MAX_MSGS=500", "GAMEAD_QUEUE__ACK_WAIT=2.5", "/v/bin/gamead",
                                    "up", "--data-dir", "my data"]
