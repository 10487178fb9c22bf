"""attack29b F2 on a real ``gamead serve`` under a low open-files limit: idle TCP connections no longer keep
every request out. Past ``api.max_connections`` (derived from the limit, or set) a new connection closes the one
waiting longest for a request; with every connection serving a request it gets ``503 too_many_connections``; and
accept() failing for want of a descriptor closes a waiting connection and says so in the log."""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from gamead_core.embedded import EmbeddedNats
from tests.support import (
    Proc,
    ad,
    clean_env,
    free_port,
    gamead_argv,
    wait_api_ready,
    wait_for,
)

NOFILE = 128  #: the API's open-files limit, soft and hard (so it cannot raise it)
IDLE = 3 * NOFILE  #: idle sockets held open: more than the API has descriptors


def address(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").split(":")
    return host, int(port)


def start_limited(nats_url: str, logs: Path, port: int, hard: int = NOFILE, **env: str) -> tuple[Proc, str]:
    """``gamead serve`` with ``RLIMIT_NOFILE`` ``NOFILE``:``hard`` (``prlimit``), ready."""
    argv = ["prlimit", f"--nofile={NOFILE}:{hard}", *gamead_argv("serve", "--port", str(port))]
    proc = Proc("api", argv, clean_env(GAMEAD_NATS__URL=nats_url, **env), logs / "api.log").start()
    url = f"http://127.0.0.1:{port}"
    wait_api_ready(proc, url)
    return proc, url


@pytest.fixture
def idle_sockets() -> Iterator[ExitStack]:
    with ExitStack() as stack:
        yield stack


def hold_idle(url: str, stack: ExitStack, count: int) -> list[socket.socket]:
    """``count`` connections to ``url`` that send nothing, closed at the test's end."""
    return [stack.enter_context(socket.create_connection(address(url), timeout=10)) for _ in range(count)]


def submit(url: str) -> httpx.Response:
    with httpx.Client(timeout=10) as client:
        return client.post(f"{url}/ads", json=ad("fd bound"))


pytestmark = pytest.mark.skipif(shutil.which("prlimit") is None, reason="needs prlimit (util-linux)")


def soft_nofile(pid: int) -> int:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            return int(line.split()[3])
    raise AssertionError("no Max open files")


def test_serve_and_worker_raise_their_soft_open_files_limit_to_the_hard_one(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    proc, url = start_limited(nats_server.url, tmp_path, free_port(), hard=4 * NOFILE)
    argv = ["prlimit", f"--nofile={NOFILE}:{4 * NOFILE}", *gamead_argv("worker", "--id", "fd-w1")]
    worker = Proc("fd-w1", argv, clean_env(GAMEAD_NATS__URL=nats_server.url), tmp_path / "worker.log").start()
    try:
        assert soft_nofile(proc.pid) == 4 * NOFILE  # before: 128, and 128 descriptors were all it could open
        assert "connections: at most 448 open" in proc.output()  # 512 less the reserve of 64
        wait_for(lambda: "worker started" in worker.output(), what="the worker started")
        assert soft_nofile(worker.pid) == 4 * NOFILE
        assert f"worker: open-files limit {4 * NOFILE} (RLIMIT_NOFILE" in worker.output()  # still low: said
    finally:
        worker.stop()
        proc.stop()


def test_idle_connections_past_the_bound_make_room_for_a_submit(
    nats_server: EmbeddedNats, tmp_path: Path, idle_sockets: ExitStack
) -> None:
    proc, url = start_limited(nats_server.url, tmp_path, free_port())
    try:
        hold_idle(url, idle_sockets, IDLE)
        answer = submit(url)  # before: connection reset or an empty reply for as long as the sockets were held
        assert answer.status_code == 202, answer.text
        wait_for(lambda: "api.max_connections (64) reached: closed the connection waiting longest" in proc.output(),
                 what="the log line saying a waiting connection was closed for room")
        assert "connections: at most 64 open" in proc.output()  # the bound in force, and the low limit, at start
        assert f"open-files limit {NOFILE} (RLIMIT_NOFILE" in proc.output()
    finally:
        proc.stop()


def test_accept_out_of_descriptors_closes_a_waiting_connection_and_says_so(
    nats_server: EmbeddedNats, tmp_path: Path, idle_sockets: ExitStack
) -> None:
    # a bound the limit cannot hold: accept() itself fails with EMFILE
    proc, url = start_limited(nats_server.url, tmp_path, free_port(), GAMEAD_API__MAX_CONNECTIONS="5000")
    try:
        hold_idle(url, idle_sockets, IDLE)
        answer = submit(url)
        assert answer.status_code == 202, answer.text
        wait_for(lambda: f"accept failed: Too many open files (open-files limit {NOFILE}," in proc.output(),
                 what="the accept failure in the log")
        assert "connection(s) waiting longest for a request to make room" in proc.output()
        assert submit(url).status_code == 202  # and again: the listener still accepts
        assert "api.max_connections is above the 64 connections the limit leaves room for" in proc.output()
    finally:
        proc.stop()


def test_a_new_connection_is_answered_503_when_every_connection_is_serving_a_request(
    nats_server: EmbeddedNats, tmp_path: Path, idle_sockets: ExitStack
) -> None:
    proc, url = start_limited(nats_server.url, tmp_path, free_port(), GAMEAD_API__MAX_CONNECTIONS="8")
    try:
        busy = hold_idle(url, idle_sockets, 8)
        for sock in busy:  # a whole head, half a body: each one's request is in flight
            sock.sendall(b"POST /ads HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 100\r\n\r\n{\"title\":")
        wait_for(lambda: _busy_seen(url),
                 what="a new connection refused while 8 requests are in flight")
        assert "api.max_connections (8) reached with every other connection serving a request" in proc.output()
    finally:
        proc.stop()


def _busy_seen(url: str) -> bool:
    """Whether a ``POST /ads`` on a new connection gets ``503 too_many_connections`` (JSON)."""
    try:
        answer = submit(url)
    except httpx.TransportError:
        return False
    if answer.status_code != 503:
        return False
    return answer.headers["content-type"] == "application/json" and \
        answer.json()["error"]["code"] == "too_many_connections"
