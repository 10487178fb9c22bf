"""attack54: ``gamead up`` restarting its nats-server on a client port another process took (kill -9 of the server,
the port taken before the restart binds it) said only nats-server's own log line, every back-off (up to 30 s) for
as long as the port was held, with nothing on what to do. The port is kept (the API and the workers connect there):
the console now says so, and that the start goes on once the port is free."""

from __future__ import annotations

from gamead_cli.commands.up_logs import nats_port_taken

_LINE = ('[19451] 2026/12/06 18:08:23.860247 [FTL] Error listening on port: 127.0.0.1:23232, "listen tcp '
         '127.0.0.1:23232: bind: address already in use"')


def test_the_client_port_taken_is_said_with_what_to_do() -> None:
    words = nats_port_taken(_LINE)
    assert "client port 23232 on 127.0.0.1 is taken by another process" in words
    assert "until it is free" in words and "not moved" in words


def test_other_ends_are_not_said() -> None:
    assert nats_port_taken("") == ""
    assert nats_port_taken("[1] [FTL] Can't start monitoring: listen tcp 127.0.0.1:8222: bind: address already "
                           "in use") == ""  # the monitoring port: moved at the restart (up_liveness.nats_argv)
    assert nats_port_taken("[1] [FTL] Error listening on port: 127.0.0.1:4222, \"listen tcp 127.0.0.1:4222: bind: "
                           "permission denied\"") == ""
