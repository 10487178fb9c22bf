"""The command line's grammar and completion (pure: no Textual, no server): every example of the help parses."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gamead_cli.tui import commands
from gamead_cli.tui.commands import Command, CommandError


@pytest.mark.parametrize(("line", "expected"), [
    (":dlq", Command("dlq")),
    ("workers", Command("workers")),
    (":level 2", Command("level", {"level": 2})),
    (":audit", Command("audit")),
    (":doctor", Command("doctor")),
    (":scale 4 for 10m", Command("scale", {"replicas": 4, "seconds": 600})),
    # newcomer56: the bounds of `gamead scale set` (the API's), not 1000 workers and 1d of its own
    (":scale 5000 for 3d", Command("scale", {"replicas": 5000, "seconds": 3 * 86400})),
    ("scale 0 for 90s", Command("scale", {"replicas": 0, "seconds": 90})),
    ("scale 2 for 1h", Command("scale", {"replicas": 2, "seconds": 3600})),
    (":replay class=Timeout", Command("replay", {"filter": {"errorClass": "Timeout"}})),
    ("purge class=PermanentError", Command("purge", {"filter": {"errorClass": "PermanentError"}})),
    ("  :doc  ", Command("doctor")),  # a unique prefix is the command
])
def test_every_example_of_the_help_parses(line: str, expected: Command) -> None:
    assert commands.parse(line) == expected


@pytest.mark.parametrize(("line", "says"), [
    ("", "no command"),
    (":level 7", "level N, N from 1 to 5"),
    (":level two", "level N"),
    (":scale 4", "scale N for 10m"),
    # read (days are a unit, as for scale set --for), then bounded: the one sentence (polish47: "a hold lasts 1s to
    # 24h, not '3d'")
    (":scale 4 for 8d", r"^a hold must be 1s to 7d, not 8d$"),
    (":scale 4 for soon", "cannot read duration 'soon'"),
    (":scale 4 for 200h", r"^a hold must be 1s to 7d, not 200h$"),
    (":scale 4 for 0.4s", r"^a hold must be 1s to 7d, not 0.4s$"),
    (":scale 10001 for 1h", r"^the worker count must be 0 to 10,000, not 10,001$"),
    (":replay Timeout", "replay class=ErrorClass"),
    (":replay class=a.b>c", "not an error class"),  # never a NATS wildcard or a subject token
    (":dlq now", "takes no arguments"),
    (":p", "no command"),  # pause and purge: ambiguous
    (":" + "x" * 300, "at most 200 characters"),
])
def test_a_bad_line_says_what_is_wrong(line: str, says: str) -> None:
    with pytest.raises(CommandError, match=says):
        commands.parse(line)


def test_completion_offers_levels_and_the_error_classes_in_view() -> None:
    assert commands.complete("lev") == "level 1"
    assert commands.complete("level 3") == "level 3"
    assert commands.complete("rep", error_classes=["TimeoutError"]) == "replay class=TimeoutError"
    assert commands.complete("sc") == "scale 4 for 10m"
    assert commands.complete("zz") is None


def test_a_read_only_dashboard_offers_no_action() -> None:
    offered = commands.suggestions(readonly=True, error_classes=["TimeoutError"])
    assert not [s for s in offered if s.split()[0] in ("scale", "replay", "purge")]
    assert commands.complete("sc", readonly=True) is None
    assert "doctor" in offered and "level 5" in offered


@given(st.text(max_size=250))
def test_any_line_parses_or_says_why(line: str) -> None:
    try:
        cmd = commands.parse(line)
    except CommandError as exc:
        assert str(exc) and "\n" not in str(exc)
    else:
        assert cmd.name in commands.BY_NAME
