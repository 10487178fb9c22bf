"""A request that arrived whole while ``gamead serve`` stood still is answered, not reset (attack34b F1, F2), on a
real NATS and a real ``gamead serve`` stopped by SIGSTOP (by its PID, the test's own process) and resumed.

Before: the loop ran its due timers before it read its sockets, so a timer that closes for time (the keep-alive
close, the read deadline's "opened and never spoke", the graceful stop's close of idle connections) closed the
connection with the request unread in it; the client got ``ECONNRESET`` and, for ``POST /ads``, could not tell
whether its ad was queued (it was not)."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gamead_core.embedded import EmbeddedNats
from tests.support import ad, all_threads_stopped, start_api, wait_for

SHORT = 1.0  #: the shortened api.keep_alive_timeout / api.read_timeout of these tests (s)
STALL = 2.5  #: seconds the API stands still: well past SHORT (the findings: 6 s past 5 s, 16 s past 15 s)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[EmbeddedNats]:
    s = EmbeddedNats(tmp_path / "nats").start()
    yield s
    s.stop()


def _post(title: str) -> bytes:
    body = json.dumps(ad(title, priority=2)).encode()
    return (b"POST /ads HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: "
            + str(len(body)).encode() + b"\r\n\r\n" + body)


def _connect(url: str) -> socket.socket:
    parts = urlsplit(url)
    return socket.create_connection((parts.hostname, parts.port), timeout=30)


def _answer(sock: socket.socket) -> bytes:
    """The first answer read on ``sock`` (its status line and what came with it), or what the read raised."""
    try:
        return sock.recv(65536)
    except OSError as exc:  # before the fix: ConnectionResetError(104)
        return repr(exc).encode()


#: the event loop's wait for its sockets (epoll_wait, epoll_pwait, epoll_pwait2), by machine
_POLLS = {"x86_64": {232, 281, 441}, "aarch64": {22, 441}}.get(platform.machine())


def _in_its_poll(pid: int) -> bool:
    """Whether the stopped process stands in its event loop's poll (``/proc/PID/syscall``); True where that cannot
    be read (another machine, no ptrace access: the test is then only less sure to fail without the fix)."""
    try:
        number = Path(f"/proc/{pid}/syscall").read_text().split()[0]
    except (OSError, IndexError):
        return True
    return _POLLS is None or (number.isdigit() and int(number) in _POLLS)


@contextlib.contextmanager
def _frozen_idle(pid: int) -> Iterator[None]:
    """The API stopped (SIGSTOP by PID, the test's own process) while it waits in its poll, as an idle loop does,
    resumed (SIGCONT) on the way out. Stopped anywhere else (still finishing the last answer), it would read what
    came at once on resuming, with or without the fix: then it is resumed and stopped again."""

    def stopped_in_its_poll() -> bool:
        os.kill(pid, signal.SIGSTOP)
        wait_for(lambda: all_threads_stopped(pid), timeout=10, interval=0.005, what=f"process {pid} to stop")
        if _in_its_poll(pid):
            return True
        os.kill(pid, signal.SIGCONT)
        return False

    wait_for(stopped_in_its_poll, timeout=20, interval=0.01, what=f"process {pid} stopped in its poll")
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def _stand_still(pid: int, *sends: tuple[socket.socket, bytes], terminate: bool = False) -> None:
    """Stop the API, send each ``(socket, bytes)`` of ``sends`` while it stands still for :data:`STALL` s (SIGTERM
    it meanwhile with ``terminate``), resume it."""
    with _frozen_idle(pid):
        stopped = time.monotonic()
        for sock, data in sends:
            sock.sendall(data)
        if terminate:
            os.kill(pid, signal.SIGTERM)  # pending until SIGCONT, as for a pod stopped while its loop is busy
        wait_for(lambda: time.monotonic() - stopped >= STALL, timeout=STALL + 5, interval=0.1,
                 what=f"a {STALL:g} s stall")


def _status(answer: bytes) -> str:
    return answer.split(b"\r\n", 1)[0].decode(errors="replace")


def test_a_post_that_came_on_an_idle_keep_alive_connection_during_a_stall_is_answered(server: EmbeddedNats,
                                                                                       tmp_path: Path) -> None:
    """F1 (keep-alive): a GET answered, the API stopped 2.5 s (> api.keep_alive_timeout 1 s), a whole POST /ads
    sent meanwhile: 202 with its id (before: ConnectionResetError, the ad not queued)."""
    api, url = start_api(server.url, tmp_path, GAMEAD_API__KEEP_ALIVE_TIMEOUT=str(SHORT))
    try:
        sock = _connect(url)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _status(_answer(sock)) == "HTTP/1.1 200 OK"
        _stand_still(api.pid, (sock, _post("Stalled keep-alive")))
        answer = _answer(sock)
        assert _status(answer) == "HTTP/1.1 202 Accepted", answer
        ad_id = json.loads(answer.split(b"\r\n\r\n", 1)[1])["id"]
        assert httpx.get(f"{url}/ads/{ad_id}", timeout=10).status_code == 200  # queued, as its 202 says
        sock.close()
    finally:
        api.stop()


def _open_connections(client: httpx.Client) -> float:
    text = client.get("/metrics").text
    return next(s.value for f in text_string_to_metric_families(text) if f.name == "gamead_connections_open"
                for s in f.samples)


def test_a_post_that_came_on_a_fresh_connection_during_a_stall_is_answered(server: EmbeddedNats,
                                                                           tmp_path: Path) -> None:
    """F1 (fresh connection): a connection the API accepted, the API stopped 2.5 s (> api.read_timeout 1 s), a
    whole POST /ads sent meanwhile: 202 (before: closed unread as "opened and never spoke", a reset). A request
    that came only in part is still 408 (the read deadline is not lifted, only read first)."""
    api, url = start_api(server.url, tmp_path, GAMEAD_API__READ_TIMEOUT=str(SHORT))
    try:
        with httpx.Client(base_url=url, timeout=10) as metrics:  # one kept connection: counted once, never closed
            wait_for(lambda: _open_connections(metrics) == 1, timeout=10, what="only the metrics connection open")
            sock = _connect(url)
            wait_for(lambda: _open_connections(metrics) == 2, timeout=10, what="the API to take the connection")
            partial = _connect(url)
            wait_for(lambda: _open_connections(metrics) == 3, timeout=10, what="the API to take the second one")
            whole = _post("Stalled fresh connection")
            _stand_still(api.pid, (sock, whole), (partial, whole[:40]))
        answer = _answer(sock)
        assert _status(answer) == "HTTP/1.1 202 Accepted", answer
        late = _answer(partial)
        assert _status(late) == "HTTP/1.1 408 Request Timeout", late
        assert json.loads(late.split(b"\r\n\r\n", 1)[1])["error"]["code"] == "request_timeout"
        sock.close()
        partial.close()
    finally:
        api.stop()


def test_a_post_that_came_just_before_a_sigterm_is_answered_before_the_api_stops(server: EmbeddedNats,
                                                                                 tmp_path: Path) -> None:
    """F2: a GET answered on a keep-alive connection, the API stopped 2.5 s (below api.keep_alive_timeout 5 s),
    a whole POST /ads sent, then SIGTERM, then SIGCONT: the POST is answered (202, its ad queued; before:
    ConnectionResetError at the graceful stop's close of "idle" connections) and the API exits."""
    api, url = start_api(server.url, tmp_path)
    try:
        sock = _connect(url)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _status(_answer(sock)) == "HTTP/1.1 200 OK"
        _stand_still(api.pid, (sock, _post("Stalled before SIGTERM")), terminate=True)
        answer = _answer(sock)
        assert _status(answer) == "HTTP/1.1 202 Accepted", answer
        assert _answer(sock) == b""  # then the stop closes the connection (no reset)
        wait_for(lambda: not api.alive(), timeout=30, what="the API to stop after its SIGTERM")
        sock.close()
    finally:
        api.stop()

