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
