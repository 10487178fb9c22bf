"""attack34a F1 on a real ``gamead serve``: clients that ask for big answers and never read them. Before, each kept
its descriptor and megabytes of socket buffer for ever, out of ``api.max_connections`` (a connection closed for room
only left the count: its close waited for a buffer nobody read), and no timeout reclaimed it; 64 of them at an
open-files limit of 80 froze ``/healthz``. Now an answer that makes no progress for ``api.write_timeout`` is aborted
and logged, and a stalled one is cut, not closed, when room is made."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import socket
import struct
import termios
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from gamead_core.embedded import EmbeddedNats
from tests.support import Proc, ad, clean_env, gamead_argv, on_a_free_port, serve_ready, start_api, wait_for

#: answers of about 1.2 MB each (100 ads of ~12 KB: the longest description and 100 tags of 100 characters)
BIG_PAGE = "/ads?limit=100"
#: requests pipelined by each reader: ~10 MB of answers, more than the kernel's send buffer takes (4 MB at most
#: here, ``net.ipv4.tcp_wmem``), so the API's transport holds the rest; a handler waits to write the next answer
PIPELINED = 8
#: one answer of about 6 MB (500 ads): handed to the transport whole, complete, its tail in the transport's buffer
HUGE_PAGE = "/ads?limit=500"


#: seconds the held readers' state may take: an answer stalls only once the kernel's send queue is full, after up to
#: PIPELINED pages were made for each of the 4 held (32 listings of 1.2 MB, CPU-bound), then a sweep (1 s) sees it;
#: 0.6 s at load ~20, past 15 s at load 35-52 (load57 fc2: /healthz still 503 at 15 s)
HELD_WAIT = 60


def big_ad(i: int) -> dict[str, object]:
    tags = [f"{i:03d}{n:02d}" + "t" * 95 for n in range(50)]
    return ad(f"big {i}", description="d" * 2000, targetAudience=tags, visualElements=tags)


def fill(url: str, batches: int = 1) -> None:
    """``batches`` × 100 big ads, so that ``GET`` :data:`BIG_PAGE` answers ~1.2 MB (:data:`HUGE_PAGE`: ~6 MB)."""
    with httpx.Client(timeout=30) as client:
        for batch in range(batches):
            answer = client.post(f"{url}/ads/batch", json={"ads": [big_ad(100 * batch + i) for i in range(100)]})
            assert answer.status_code == 200, answer.text
        assert len(client.get(f"{url}{BIG_PAGE}").content) > 1_000_000


def reader(url: str, stack: ExitStack, path: str = BIG_PAGE, count: int = PIPELINED) -> socket.socket:
    """A connection with a 4 KB receive buffer that asks ``path`` ``count`` times (pipelined) and never reads."""
    host, port = url.removeprefix("http://").split(":")
    sock = stack.enter_context(socket.socket())
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode() * count)
    return sock


def answered(sock: socket.socket) -> bool:
    """Whether bytes of an answer reached ``sock`` (unread: its receive queue is not empty)."""
    return struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0" * 4))[0] > 0


def sockets_of(pid: int) -> int:
    """Socket descriptors process ``pid`` holds."""
    count = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            count += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
        except OSError:
            pass
    return count


#: ``tcpi_state`` of a socket its peer reset (``TCP_CLOSE``; a FIN would leave it ``TCP_CLOSE_WAIT``, 8)
TCP_CLOSE = 7


def reset(sock: socket.socket) -> bool:
    """Whether the API reset ``sock`` (read from its TCP state, without reading: a read would be progress)."""
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0] == TCP_CLOSE


def healthz(url: str) -> int:
    try:
        return httpx.get(f"{url}/healthz", timeout=5).status_code
    except httpx.TransportError:
        return 0


def write_timeouts(proc: Proc, event: str = "write_timeout") -> list[dict[str, object]]:
    lines = (json.loads(line) for line in proc.output().splitlines() if line.startswith("{"))
    return [line for line in lines if line.get("event") == event]


@pytest.fixture
def held() -> Iterator[ExitStack]:
    with ExitStack() as stack:
        yield stack


def test_an_answer_its_client_never_reads_is_aborted_after_the_write_timeout(
    nats_server: EmbeddedNats, tmp_path: Path, held: ExitStack
) -> None:
    """Figure: 2 readers of 8 pipelined 1.2 MB pages at api.write_timeout 2 s: before, both held for ever."""
    proc, url = start_api(nats_server.url, tmp_path, GAMEAD_API__WRITE_TIMEOUT="2")
    try:
        fill(url)
        socks = [reader(url, held) for _ in range(2)]
        ports = {f"127.0.0.1:{sock.getsockname()[1]}" for sock in socks}
        wait_for(lambda: all(reset(sock) for sock in socks), timeout=30, what="both readers reset")
        lines = write_timeouts(proc)  # one a second at most: the next says how many were left out
        assert lines and {line["peer"] for line in lines} <= ports and len(lines) + lines[-1]["left_out"] >= 1
        for line in lines:
            assert line["bytes_left"] > 0 and "(api.write_timeout)" in line["message"], line
        assert httpx.get(f"{url}/healthz", timeout=5).status_code == 200
    finally:
        proc.stop()


def test_answers_nobody_reads_are_bounded_in_bytes_all_together(
    nats_server: EmbeddedNats, tmp_path: Path, held: ExitStack
) -> None:
    """Figure: 3 readers of a 6 MB page at api.max_unsent_bytes 1 MiB (write timeout 120 s, out of play): before,
    each kept its unsent megabytes (the answer's tail the kernel did not take) for ever. A 6 MB answer leaves at
    least 2 MB in the API whatever the kernel's send buffer (4 MiB at most, ``net.ipv4.tcp_wmem``); with 1.2 MB
    pages the kernel sometimes took nearly all of each, the three tails stayed under the bound, and none was cut
    (two fresh-clone runs)."""
    proc, url = start_api(nats_server.url, tmp_path, GAMEAD_API__MAX_UNSENT_BYTES=str(1 << 20),
                          GAMEAD_API__WRITE_TIMEOUT="120")
    try:
        fill(url, batches=5)
        socks = [reader(url, held, HUGE_PAGE, 1) for _ in range(3)]
        wait_for(lambda: sum(reset(sock) for sock in socks) >= 2, timeout=90, what="2 of 3 readers cut")
        line = write_timeouts(proc, "write_budget")[0]
        assert "over api.max_unsent_bytes (1048576)" in line["message"] and line["bytes_left"] > 0, line
    finally:
        proc.stop()


def test_readers_that_never_read_stay_counted_against_the_bound(
    nats_server: EmbeddedNats, tmp_path: Path, held: ExitStack
) -> None:
    """Figure: 10 readers of 8 pipelined 1.2 MB pages, never reading, against api.max_connections 4 (write timeout
    120 s, out of play): before, the 4 held had a handler waiting to write for ever, "serving a request", never
    closed for room: /healthz was 503 too_many_connections for as long as the readers stayed."""
    proc, url = start_api(nats_server.url, tmp_path, GAMEAD_API__MAX_CONNECTIONS="4", GAMEAD_API__WRITE_TIMEOUT="120")
    try:
        fill(url)
        before = sockets_of(proc.pid)
        for _ in range(10):
            reader(url, held)
        wait_for(lambda: sockets_of(proc.pid) - before <= 4, timeout=HELD_WAIT,
                 what="the API holding at most 4 client sockets (api.max_connections)")
        # 503 while the 4 held are still served; 200 once their answers stall: the longest stalled is cut for it
        wait_for(lambda: healthz(url) == 200, timeout=HELD_WAIT, what="/healthz answered past 4 stalled readers")
        # the /healthz probes' own connections (one per look above) are closed by the API as it gets to them
        wait_for(lambda: sockets_of(proc.pid) - before <= 4 + 1, timeout=HELD_WAIT,
                 what="the API back to at most 4 client sockets (+ the last /healthz's)")
        proc.stop()
        assert "Traceback" not in proc.output()  # before: one per stalled reader, and the stop waited 10 s
        assert "timeout graceful shutdown exceeded" not in proc.output()
    finally:
        proc.stop()


#: the API's open-files limit (soft and hard): the bound derived from it is 16, as in attack34a F1 (80)
NOFILE = 80


@pytest.mark.skipif(shutil.which("prlimit") is None, reason="needs prlimit (util-linux)")
@pytest.mark.timeout(300)  # 64 readers of 6 MB one after another: 11 s at load 1, past the default 120 s at load 30
def test_never_reading_readers_past_the_open_files_limit_leave_healthz_answering(
    nats_server: EmbeddedNats, tmp_path: Path, held: ExitStack
) -> None:
    """Figure (attack34a F1, its 3.3 MB answer made 6 MB to pass the kernel's 4 MB send buffer for sure): 64 readers
    of one answer each, never reading, at an open-files limit of 80 (bound 16) left ``/healthz`` unanswered (> 60 s):
    each closed for room kept its descriptor, out of the count (here, before: 68 sockets held against the bound of
    16, at the limit of 80). Now each is cut."""
    def start(port: int) -> tuple[Proc, str]:
        argv = ["prlimit", f"--nofile={NOFILE}:{NOFILE}", *gamead_argv("serve", "--port", str(port))]
        return serve_ready(Proc("api", argv, clean_env(GAMEAD_NATS__URL=nats_server.url), tmp_path / "api.log"), port)

    proc, url = on_a_free_port(start)
    try:
        assert "connections: at most 16 open" in proc.output()
        fill(url, batches=5)
        for n in range(64):  # one at a time, as attack34a's pin.py did (2.2 s apart): each answered first
            sock = reader(url, held, HUGE_PAGE, 1)
            wait_for(lambda: answered(sock), timeout=20, what=f"reader {n} answered")
        wait_for(lambda: healthz(url) == 200, timeout=20, what="/healthz answered")  # before: none (000 after 5 s)
        assert sockets_of(proc.pid) < NOFILE - 16
    finally:
        proc.stop()
