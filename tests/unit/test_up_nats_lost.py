"""port54: which of its picked ports a failed start of ``gamead up``'s nats-server lost to another process
(:func:`gamead_cli.commands.up_nats.lost_ports`), on the messages a real start gave (the client port held by a
listening socket, or by a socket only bound; the monitoring port held by a listening socket)."""

from __future__ import annotations

from gamead_cli.commands.up_nats import lost_ports

CLIENT_TAKEN = ("port 45077 on 127.0.0.1 answers, but not from the nats-server just started (pid 10171): another "
                "process holds it")
MONITOR_TAKEN = ("nats-server exited with code 1: [10179] 2026/12/06 17:28:04.552247 [FTL] Can't start monitoring: "
                 "can't listen to the monitor port: listen tcp 127.0.0.1:40185: bind: address already in use")
CLIENT_BIND = ("nats-server exited with code 1: [1] 2026/12/06 17:28:04.552247 [FTL] Error listening on port: "
               "127.0.0.1:45077, \"listen tcp 127.0.0.1:45077: bind: address already in use\"")


def test_a_picked_client_port_lost_is_lost() -> None:
    assert lost_ports(CLIENT_TAKEN, "127.0.0.1", 45077, 40185, True) == (True, False)
    assert lost_ports(CLIENT_BIND, "127.0.0.1", 45077, 40185, True) == (True, False)


def test_the_operators_client_port_is_never_moved() -> None:
    assert lost_ports(CLIENT_TAKEN, "127.0.0.1", 45077, 40185, False) == (False, False)


def test_a_lost_monitoring_port_is_lost_picked_or_not() -> None:
    assert lost_ports(MONITOR_TAKEN, "127.0.0.1", 45077, 40185, False) == (False, True)
    assert lost_ports(MONITOR_TAKEN, "127.0.0.1", 45077, 40185, True) == (False, True)


def test_another_port_or_another_failure_is_not_lost() -> None:
    assert lost_ports(MONITOR_TAKEN, "127.0.0.1", 45077, 40186, True) == (False, False)
    assert lost_ports("nats-server exited with code 1: bad config", "127.0.0.1", 45077, 40185, True) == (False, False)
    assert lost_ports(MONITOR_TAKEN, "127.0.0.1", 45077, 0, True) == (False, False)
