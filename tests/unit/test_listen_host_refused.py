"""A host no listener can bind, whatever the port, is said in words by every check of a host or port gamead makes
(:func:`gamead_core.listen.host_words`): an address not of this machine (``EADDRNOTAVAIL``), an address family the
machine has not (``EAFNOSUPPORT``: ``::`` without IPv6), an address no socket binds (``EINVAL``: ``fe80::1``), a name
that does not resolve. Real sockets; ``192.0.2.1`` (TEST-NET-1, RFC 5737) is never an address of this machine.

Before (repick55): :func:`~gamead_core.proc.port_free` raised the bind's bare ``OSError`` (``[Errno 99] Cannot
assign requested address``), so ``GAMEAD_WORKER__METRICS_HOST=192.0.2.1 gamead up`` ended in "unexpected error",
exit 1, after starting nats-server and the API; ``::`` on a machine without IPv6 failed at the socket itself, before
:func:`~gamead_core.listen.bind_listener`'s refusal, and ``fe80::1`` was "choose another worker.metrics_port"."""

from __future__ import annotations

import errno
import os
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from gamead_core.errors import ConfigError
from gamead_core.listen import bind_listener, bind_once, host_words, listen_refusal
from gamead_core.metrics_ports import WorkerMetricsPorts
from gamead_core.port_claims import PortClaims
from gamead_core.proc import port_free
from gamead_core.supervisor import Supervisor
from tests.support import wait_for


def _has_ipv6() -> bool:
    try:
        socket.socket(socket.AF_INET6, socket.SOCK_STREAM).close()
    except OSError:
        return False
    return True


IPV6 = pytest.mark.skipif(not _has_ipv6(), reason="this machine has no IPv6: its refusal is EAFNOSUPPORT's")

HOSTS = [
    ("192.0.2.1", "192.0.2.1 is not an address of this machine"),
    pytest.param("2001:db8::1", "2001:db8::1 is not an address of this machine", marks=IPV6),
    pytest.param("fe80::1", "fe80::1 is not an address a listener can bind here (Invalid argument; a link-local IPv6 "
                            "address names its interface: fe80::1%eth0)", marks=IPV6),
    ("my-host.invalid", "my-host.invalid does not resolve ("),
]


@pytest.mark.parametrize(("host", "words"), HOSTS)
def test_every_check_of_a_port_says_why_a_host_cannot_be_listened_on(tmp_path: Path, host: str, words: str) -> None:
    """Each check ``gamead up`` (and the test harness) makes of a port on a host: one line in words, a ConfigError
    (exit 5 at a start), never the bind's bare OSError."""
    checks = {
        "port_free": lambda: port_free(host, 8081),
        "PortClaims.pick (free_port)": lambda: PortClaims(tmp_path).pick(host, "its embedded nats-server"),
        "bind_once (free_port's last resort)": lambda: bind_once(host, 0, reuse=False),
        "WorkerMetricsPorts.port_for": lambda: WorkerMetricsPorts(host, 8081).port_for("local-1"),
    }
    for name, check in checks.items():
        with pytest.raises(ConfigError) as refused:
            check()
        line = refused.value.message
        assert line.startswith("cannot listen on ") and words in line and "\n" not in line, (name, line)


@pytest.mark.parametrize(("host", "words"), HOSTS)
def test_a_listener_of_a_setting_names_the_host_setting(host: str, words: str) -> None:
    """``gamead serve`` / ``worker`` (:func:`bind_listener`): the host's setting is named, never the port's (before:
    ``fe80::1`` was "Invalid argument; choose another worker.metrics_port")."""
    with pytest.raises(ConfigError) as refused:
        bind_listener(host, 0, "worker.metrics_port")
    line = refused.value.message
    assert line.startswith(f"cannot listen on {f'[{host}]' if ':' in host else host} (worker.metrics_host): "), line
    assert words in line and line.endswith("; choose another worker.metrics_host"), line


def test_an_ipv6_host_on_a_machine_without_ipv6_is_said_so() -> None:
    """``::`` where the kernel has no IPv6: the socket itself is refused (``EAFNOSUPPORT``). This machine may have
    IPv6, so the words are checked on the error such a machine gives."""
    exc = OSError(errno.EAFNOSUPPORT, os.strerror(errno.EAFNOSUPPORT))
    assert host_words("::", exc) == ":: is an IPv6 address and this machine has no IPv6 (address family not supported)"
    assert listen_refusal("::", 9100, "worker.metrics_port", exc).message == (
        "cannot listen on [::]:9100 (worker.metrics_host): :: is an IPv6 address and this machine has no IPv6 (address "
        "family not supported); choose another worker.metrics_host")
    assert host_words("127.0.0.1", OSError(errno.EADDRINUSE, "in use")) is None  # the port's, not the host's
    assert host_words("127.0.0.1", OSError(errno.EMFILE, "too many")) is None


def test_a_restart_after_its_host_left_the_machine_is_said_in_words_and_tried_again(
        tmp_path: Path, closed_port: Callable[[], int]) -> None:
    """A worker's ``/metrics`` address gone while it ran (an interface's address changed): its restart under ``gamead
    up`` is one line in words and another try after the back-off, not the end of the stack (the refusal is also an
    OSError, as the supervisor's restart expects of a process that cannot start); once the address is back, it
    restarts."""
    events: list[str] = []
    sup = Supervisor(on_event=events.append)
    metrics = WorkerMetricsPorts("127.0.0.1", closed_port())  # its planned port held: one picked (never bound)
    child = sup.start("worker-1", lambda: [sys.executable, "-c", "import time; time.sleep(60)",
                                           *metrics.args("local-1")], dict(os.environ), tmp_path / "worker-1.log")
    try:
        first = child.pid
        assert first is not None
        metrics.host = "192.0.2.1"  # the address left the machine
        os.kill(first, signal.SIGKILL)
        wait_for(lambda: (sup.poll(), any("could not be restarted" in e for e in events))[1], timeout=15,
                 what="the failed restart to be said")
        line = next(e for e in events if "could not be restarted" in e)
        assert line.startswith("worker-1 could not be restarted (HostRefused: cannot listen on 192.0.2.1:"), line
        assert "192.0.2.1 is not an address of this machine" in line and "retrying in" in line, line
        metrics.host = "127.0.0.1"  # back: the next try starts it
        wait_for(lambda: (sup.poll(), child.alive and child.pid != first)[1], timeout=15, what="the restart")
    finally:
        sup.stop_all(timeout=5)
