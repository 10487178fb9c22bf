"""``gamead up`` and ``gamead worker`` given a ``worker.metrics_host`` no listener can bind (not an address of this
machine, a name that does not resolve, an IPv6 link-local address without its interface): one red line naming the
host's setting, exit 5 (README: a configuration that cannot work), and ``up`` starts nothing. Real processes.

Before (repick55): ``up`` checked that host only when it started a worker, after nats-server and the API were up,
and the check raised the bind's bare ``OSError``: "unexpected error … [Errno 99] Cannot assign requested address",
exit 1 (with ``--workers 0``, a stack that refused its first scale-up); ``worker`` said ``fe80::1``'s "Invalid
argument; choose another worker.metrics_port"."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support import clean_env, run_gamead

REFUSED = [
    ("192.0.2.1", "192.0.2.1 is not an address of this machine"),  # TEST-NET-1 (RFC 5737): EADDRNOTAVAIL
    ("my-host.invalid", "my-host.invalid does not resolve ("),  # RFC 6761
]


@pytest.mark.parametrize(("host", "words"), REFUSED)
def test_up_refuses_a_metrics_host_no_worker_could_listen_on_before_starting_anything(
        tmp_path: Path, closed_port: Callable[[], int], host: str, words: str) -> None:
    """Refused before its ports are checked (the API's, here one the test holds, would be "taken")."""
    data = tmp_path / "stack"
    result = run_gamead("up", "--workers", "1", "--port", str(closed_port()), "--data-dir", str(data),
                        env=clean_env(GAMEAD_WORKER__METRICS_HOST=host), timeout=120)
    assert result.returncode == 5, result.stderr[-2000:]
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"error: cannot listen on {host} (worker.metrics_host): {words}"), line
    assert line.endswith("; choose another worker.metrics_host"), line
    assert "nats-server" not in result.stdout, result.stdout  # refused before it started a process
    assert not data.exists()  # nothing of it is left


@pytest.mark.skipif(not socket.has_ipv6, reason="no IPv6 here: fe80::1's refusal is EAFNOSUPPORT's")
def test_worker_names_the_host_setting_for_a_link_local_address_without_its_interface(
        closed_port: Callable[[], int]) -> None:
    result = run_gamead("worker", "--id", "w-link-local", env=clean_env(
        GAMEAD_NATS__URL=f"nats://127.0.0.1:{closed_port()}", GAMEAD_WORKER__METRICS_HOST="fe80::1",
        GAMEAD_WORKER__METRICS_PORT=str(closed_port())), timeout=90)
    assert result.returncode == 5, result.stderr[-2000:]
    line = result.stderr.strip().splitlines()[-1]
    assert "(worker.metrics_host): fe80::1 is not an address a listener can bind here" in line, line
    assert line.endswith("; choose another worker.metrics_host"), line
