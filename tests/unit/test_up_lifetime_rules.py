"""Pure: when ``gamead up`` stops for its parent (``--die-with-parent``) and which signals stop it (nohup)."""

from __future__ import annotations

import signal

from gamead_cli.commands.up_parent import parent_gone
from gamead_cli.commands.up_signals import stop_signals_for


def test_the_parent_is_gone_once_the_ppid_differs_from_the_one_at_the_start() -> None:
    assert not parent_gone(4242, 4242)
    assert parent_gone(4242, 1)  # reparented to init
    assert parent_gone(4242, 977)  # … or to a subreaper (systemd --user, a container's init)


def test_sighup_stops_up_unless_it_started_ignored_as_nohup_leaves_it() -> None:
    every = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    assert stop_signals_for(signal.SIG_DFL) == every
    assert stop_signals_for(signal.default_int_handler) == every
    assert stop_signals_for(signal.SIG_IGN) == (signal.SIGINT, signal.SIGTERM)  # nohup: outlive the terminal


def test_a_sighup_never_hurries_a_stop_begun_outside_the_supervisors_loop() -> None:
    """signals56: a stop asked while the stack started (or a refusal) drains the workers under ``gamead up``'s
    last handler, which took every signal as the second that hurries, a closed terminal's SIGHUP beside a
    supervisor's SIGTERM too (``stopping now: workers hand their ads back``), unlike the supervisor's loop (208fc525).
    Before: an inline lambda that hurried on any signal."""
    from gamead_cli.commands.up_signals import hurry_handler

    hurried: list[str] = []
    handler = hurry_handler(lambda: hurried.append("hurried"))
    handler(signal.SIGHUP, None)
    assert hurried == []
    handler(signal.SIGTERM, None)
    handler(signal.SIGINT, None)
    assert hurried == ["hurried", "hurried"]
