"""attack29b F2 on a real ``gamead serve`` under a low open-files limit: idle TCP connections no longer keep
every request out. Past ``api.max_connections`` (derived from the limit, or set) a new connection closes the one
waiting longest for a request; with every connection serving a request it gets ``503 too_many_connections``; and
accept() failing for want of a descriptor closes a waiting connection and says so in the log."""

from __future__ import annotations

import json
import select
import shutil
import signal
import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gamead_cli.speaks_first import first_words, not_http
from gamead_core.embedded import EmbeddedNats
from tests import support
from tests.support import (
    Proc,
    ad,
    clean_env,
    free_port,
    frozen,
    gamead_argv,
    on_a_free_port,
    serve_ready,
    wait_for,
)

NOFILE = 128  #: the API's open-files limit, soft and hard (so it cannot raise it)
IDLE = 3 * NOFILE  #: idle sockets held open: more than the API has descriptors
#: a POST /ads whose head is whole and whose body has only begun (its client sends no more)
SLOW_BODY = b"POST /ads HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{"


def address(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").split(":")
    return host, int(port)


def start_limited(nats_url: str, logs: Path, hard: int = NOFILE, **env: str) -> tuple[Proc, str]:
    """``gamead serve`` with ``RLIMIT_NOFILE`` ``NOFILE``:``hard`` (``prlimit``), ready, on a free port: picked again
    if another process takes it before the API binds it, up to ``PICKED_STARTS`` times (ci53, ``on_a_free_port``)."""
    def start(port: int) -> tuple[Proc, str]:
        argv = ["prlimit", f"--nofile={NOFILE}:{hard}", *gamead_argv("serve", "--port", str(port))]
        return serve_ready(Proc("api", argv, clean_env(GAMEAD_NATS__URL=nats_url, **env), logs / f"api-{port}.log"),
                           port)

    return on_a_free_port(start)


def test_a_picked_api_port_another_process_took_is_picked_again(
    nats_server: EmbeddedNats, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ci53: the harness's picked API port, taken before the API binds it (a listener of this test holds the first
    pick), is picked again: the API serves on the next. Before: ``PortTaken`` ended the test at its setup."""
    with socket.create_server(("127.0.0.1", 0)) as taken:
        first = taken.getsockname()[1]
        picks, pick = iter([first]), free_port
        monkeypatch.setattr(support, "free_port", lambda: next(picks, None) or pick())
        proc, url = start_limited(nats_server.url, tmp_path)
        try:
            assert url != f"http://127.0.0.1:{first}"
            assert httpx.get(f"{url}/readyz", timeout=10).status_code == 200
        finally:
            proc.stop()


@contextmanager
def bounded_at_8(server: EmbeddedNats, logs: Path, **env: str) -> Iterator[tuple[Proc, str]]:
    """An API (:func:`start_limited`) at ``api.max_connections`` 8, with ``env``; stopped at the block's end."""
    proc, url = start_limited(server.url, logs, GAMEAD_API__MAX_CONNECTIONS="8", **env)
    try:
        yield proc, url
    finally:
        proc.stop()


@pytest.fixture
def idle_sockets() -> Iterator[ExitStack]:
    with ExitStack() as stack:
        yield stack


def hold_idle(url: str, stack: ExitStack, count: int) -> list[socket.socket]:
    """``count`` connections to ``url`` that send nothing, closed at the test's end."""
    return [stack.enter_context(socket.create_connection(address(url), timeout=10)) for _ in range(count)]


def read_by_api(socks: list[socket.socket]) -> None:
    """Wait until the API has read what ``socks`` sent: the state these tests set up (requests in flight, bodies
    still coming) begins there, not when the client's bytes reach the kernel."""
    wait_for(lambda: not any(unread_by_server(sock) for sock in socks), what="the API to read what was sent")


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
    proc, url = start_limited(nats_server.url, tmp_path, hard=4 * NOFILE)
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
    proc, url = start_limited(nats_server.url, tmp_path)
    try:
        hold_idle(url, idle_sockets, IDLE)
        answer = submit(url)  # before: connection reset or an empty reply for as long as the sockets were held
        assert answer.status_code == 202, answer.text
        wait_for(lambda: "api.max_connections (64) reached: closed the connection waiting longest" in proc.output(),
                 what="the log line saying a waiting connection was closed for room")
        assert "connections: at most 64 open" in proc.output()  # the bound in force, and the low limit, at start
        assert f"open-files limit {NOFILE} (RLIMIT_NOFILE" in proc.output()
        assert proc.output().count(f"open-files limit {NOFILE}") == 1  # attack29c F2: said once, not twice
        metrics = scrape(url)
        assert metrics["gamead_connections_closed_for_room_total"] >= IDLE - 64  # before: in the log line alone
        assert 1 <= metrics["gamead_connections_open"] <= 64
    finally:
        proc.stop()


def test_accept_out_of_descriptors_closes_a_waiting_connection_and_says_so(
    nats_server: EmbeddedNats, tmp_path: Path, idle_sockets: ExitStack
) -> None:
    # a bound the limit cannot hold: accept() itself fails with EMFILE
    proc, url = start_limited(nats_server.url, tmp_path, GAMEAD_API__MAX_CONNECTIONS="5000")
    try:
        hold_idle(url, idle_sockets, IDLE)
        answer = submit(url)
        assert answer.status_code == 202, answer.text
        wait_for(lambda: f"accept failed: Too many open files (open-files limit {NOFILE}," in proc.output(),
                 what="the accept failure in the log")
        assert "connection(s) waiting longest for a request to make room" in proc.output()
        assert submit(url).status_code == 202  # and again: the listener still accepts
        assert scrape(url)['gamead_accept_failures_total{reason="EMFILE"}'] >= 1
        assert "api.max_connections is above the 64 connections the limit leaves room for" in proc.output()
    finally:
        proc.stop()


def test_a_new_connection_is_answered_503_when_every_connection_is_serving_a_request(
    nats_server: EmbeddedNats, tmp_path: Path, idle_sockets: ExitStack
) -> None:
    with bounded_at_8(nats_server, tmp_path, **BUSY_ENV) as (proc, url):
        with every_slot_busy(nats_server, url, idle_sockets):
            pass
        assert "api.max_connections (8) reached with no other connection waiting for a request (8 serving a " \
            "request, 0 writing" in proc.output()


def test_an_api_at_its_bound_that_answers_503_as_a_connection_opens_is_still_a_gamead_api(
    nats_server: EmbeddedNats, tmp_path: Path, idle_sockets: ExitStack
) -> None:
    """probe47 F1: the speaks-first probe (:mod:`gamead_cli.speaks_first`, run when a first request's connection is
    lost) took the ``HTTP/1.1 503`` an API at ``api.max_connections`` writes as a connection opens for a server that
    speaks first: ``no gamead API at …: it answered "HTTP/1.1 503 Service Una…" (before any request: not HTTP)``."""
    with bounded_at_8(nats_server, tmp_path, **BUSY_ENV) as (_, url):
        with every_slot_busy(nats_server, url, idle_sockets):
            first = first_words(url, wait=30.0)  # 5 s: b"" once at load 30 (the API's loop that slow to answer)
            assert first.startswith(b"HTTP/1.1 503"), first
            assert not_http(url, first) is None  # before: ApiUnreachable "no gamead API at …"


#: the API's NATS deadlines (the record's write, the publish's ack, nats-py's PINGs: a stale connection's requests
#: fail), at their most, so that its requests stay in flight for as long as a block keeps NATS stopped, however slow
#: the machine. conn54: at 10 s a loaded run's block outlasted them: the 8 were answered 503 queue_unavailable, so
#: waiting, and the burst's silent newcomers closed one another for room, by rule: [b'', b'', b'', <a 503>]
BUSY_ENV = {"GAMEAD_API__PUBLISH_TIMEOUT": "600", "GAMEAD_NATS__REQUEST_TIMEOUT": "600",
            "GAMEAD_NATS__PING_INTERVAL": "600"}


@contextmanager
def every_slot_busy(server: EmbeddedNats, url: str, stack: ExitStack) -> Iterator[list[socket.socket]]:
    """8 connections to an API bounded at 8 (with :data:`BUSY_ENV`), each with a whole ``POST /ads`` in flight (its
    publish waits: NATS stopped by SIGSTOP inside the block; one whose body is still coming is not in flight:
    attack29c F1), until a new connection is seen refused ``503 too_many_connections``; yields those of the 8 still
    in flight, as they are inside the block: checked at its end (none answered yet), so that a block that outlasts
    them fails as such, not as the bound's fault.

    conn54: one of 8 silent connections opened at once can be closed for room, by rule: a connection another client
    had just closed was still counted (the API had not yet seen it go), and the 8th newcomer closed the one waiting
    longest, the first of the 8. Its slot is then taken by :func:`_busy_seen`'s POST (in flight until the block's
    end, its client gone): such a one (ended before an answer) is left out of the 8 yielded, not sent again."""
    assert server.proc is not None
    busy: list[socket.socket] = []

    def filled() -> bool:
        if not busy:
            for sock in hold_idle(url, stack, 8):
                sock.sendall(post_bytes(ad("in flight")))
                busy.append(sock)
            read_by_api(busy)
        busy[:] = [sock for sock in busy if unanswered(sock)]
        return _busy_seen(url)

    with frozen(server.proc.pid):
        wait_for(filled, timeout=60, what="a new connection refused while 8 requests are in flight")
        yield busy
        answered = [sock.getsockname()[1] for sock in busy if not unanswered(sock)]
        assert not answered, f"the block's premise broke: requests in flight were answered (ports {answered})"


def unanswered(sock: socket.socket) -> bool:
    """Whether ``sock``'s server has sent nothing yet and not ended the connection (nothing read: not readable)."""
    readable, _, _ = select.select([sock], [], [], 0)
    return not readable


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


def scrape(url: str) -> dict[str, float]:
    """The API's ``/metrics`` samples, by name (with its labels, as Prometheus writes them, if any)."""
    with httpx.Client(timeout=10) as client:
        text = client.get(f"{url}/metrics").raise_for_status().text
    return {sample.name + ("{" + ",".join(f'{k}="{v}"' for k, v in sample.labels.items()) + "}"
                           if sample.labels else ""): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def post_bytes(body: dict[str, object], close: bool = False) -> bytes:
    data = json.dumps(body).encode()
    return (b"POST /ads HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: "
            + str(len(data)).encode() + (b"\r\nConnection: close" if close else b"") + b"\r\n\r\n" + data)


def read_answer(sock: socket.socket, timeout: float = 10.0) -> bytes:
    """One HTTP answer read from ``sock`` (head and ``Content-Length`` body), within ``timeout`` seconds; what came
    before the connection ended (b'' if it ended, or was reset, with nothing)."""
    deadline, data = time.monotonic() + timeout, b""
    while True:
        head, sep, rest = data.partition(b"\r\n\r\n")
        if sep:
            length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length:")), 0)
            if len(rest) >= length:
                return data
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            part = sock.recv(65536)
        except ConnectionResetError:
            return data
        if not part:
            return data
        data += part


def unread_by_server(sock: socket.socket) -> int | None:
    """Bytes ``sock`` sent that the server's end of the connection has not read yet (its receive queue, from
    ``/proc/net/tcp``: IPv4 loopback), None if that end is not found."""
    client, server = sock.getsockname()[1], sock.getpeername()[1]
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].rsplit(":", 1)[1], 16) == server and int(fields[2].rsplit(":", 1)[1], 16) == client:
            return int(fields[4].split(":")[1], 16)
    return None


def _refused_503(answer: bytes) -> bool:
    head, _, body = answer.partition(b"\r\n\r\n")
    return head.startswith(b"HTTP/1.1 503") and json.loads(body)["error"]["code"] == "too_many_connections"


def test_a_request_in_flight_is_not_closed_for_room_when_the_next_pipelined_one_begins(
    nats_server: EmbeddedNats, tmp_path: Path, idle_sockets: ExitStack
) -> None:
    proc, url = start_limited(nats_server.url, tmp_path, GAMEAD_API__MAX_CONNECTIONS="2", **BUSY_ENV)
    assert nats_server.proc is not None
    try:
        pipelining, other = hold_idle(url, idle_sockets, 2)
        with frozen(nats_server.proc.pid):  # the POST's publish waits: its request is in flight
            pipelining.sendall(post_bytes(ad("pipelined")) + b"G")  # and the first byte of the next request
            other.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")  # answered after the POST was read
            assert read_answer(other).startswith(b"HTTP/1.1 200")
            hold_idle(url, idle_sockets, 3)  # past the bound: each closes the connection waiting longest
            assert read_answer(other) == b""  # closed for room (the first newcomer's doing): they were let in
        answer = read_answer(pipelining)
        # before: the pipelining connection was "waiting" from the G, closed for room: b'' and the ad queued unsaid
        assert answer.startswith(b"HTTP/1.1 202"), answer
    finally:
        proc.stop()


def test_every_client_of_a_burst_past_the_bound_reads_an_answer_and_each_refusal_is_counted(
    nats_server: EmbeddedNats, tmp_path: Path, idle_sockets: ExitStack
) -> None:
    with bounded_at_8(nats_server, tmp_path, **BUSY_ENV) as (_, url):
        with every_slot_busy(nats_server, url, idle_sockets) as busy:
            burst = hold_idle(url, idle_sockets, 4)  # at once, before any of them speaks
            answers = []
            for sock in burst:
                sock.sendall(post_bytes(ad("burst"), close=True))
                answers.append(read_answer(sock))
        # before: [b'', b'', b'', 202]: each newcomer closed the one refused before it and was let in
        assert all(_refused_503(answer) or answer.startswith(b"HTTP/1.1 202") for answer in answers), answers
        refused = sum(_refused_503(answer) for answer in answers)
        for sock in busy:
            sock.close()
        metrics = wait_for(lambda: _scraped(url), what="/metrics answered once the busy connections are gone")
        assert metrics["gamead_connections_refused_total"] >= refused + 1  # + _busy_seen's; before: no such series
        assert metrics["gamead_connections_open"] >= 1


def _scraped(url: str) -> dict[str, float] | None:
    try:
        return scrape(url)
    except httpx.HTTPError:  # a 503 too: the connection was refused
        return None


def test_connections_still_sending_their_bodies_make_room_for_a_health_probe(
    nats_server: EmbeddedNats, tmp_path: Path, idle_sockets: ExitStack
) -> None:
    """attack29c F1: a connection whose head was whole counted as serving a request while its body trickled in, so
    136 half-sent bodies held every slot and /healthz, /readyz and /metrics got 503 too_many_connections for
    api.read_timeout (a Kubernetes liveness probe would restart the pod). Until its last byte a request is waiting
    for its body, not served: such a connection is closed for room like an idle one (its ad was never received)."""
    with bounded_at_8(nats_server, tmp_path) as (_, url):
        slow = hold_idle(url, idle_sockets, 8)
        for sock in slow:
            sock.sendall(SLOW_BODY)
        read_by_api(slow)
        wait_for(lambda: scrape(url)["gamead_connections_open"] >= 8, what="the slow bodies' connections open")
        with httpx.Client(timeout=10) as client:
            health = client.get(f"{url}/healthz")
        assert health.status_code == 200, health.text  # before: 503 too_many_connections
        assert submit(url).status_code == 202


def test_a_sigterm_cuts_requests_still_sending_their_bodies_without_a_traceback(
    nats_server: EmbeddedNats, tmp_path: Path, idle_sockets: ExitStack
) -> None:
    """attack29c F7: on SIGTERM uvicorn waited for requests whose body was still coming until its graceful timeout
    (10 s), then cancelled each one's task with an ERROR traceback ("Exception in ASGI application"), one per
    connection. They are cut at once now (nothing of them was received whole), without a traceback."""
    proc, url = start_limited(nats_server.url, tmp_path)
    try:
        slow = hold_idle(url, idle_sockets, 5)
        for sock in slow:
            sock.sendall(SLOW_BODY)
        read_by_api(slow)
        wait_for(lambda: scrape(url)["gamead_connections_open"] >= 5, what="the slow bodies' connections open")
        proc.signal(signal.SIGTERM)
        wait_for(lambda: proc.popen is not None and proc.popen.poll() is not None, timeout=30,
                 what="gamead serve to stop")
        assert "Traceback" not in proc.output() and "Exception in ASGI application" not in proc.output()
    finally:
        proc.stop()


def test_a_sigterm_keeps_the_202_of_a_whole_post_with_a_slow_one_pipelined_behind_it(
    nats_server: EmbeddedNats, tmp_path: Path, idle_sockets: ExitStack
) -> None:
    """review29b F1: a whole POST waiting on its ack with a second POST pipelined behind it, its body still coming:
    the SIGTERM cut meant for requests still sending their bodies closed the connection, so the first ad was
    queued and its client got no 202 (a resend without a key: a second ad)."""
    proc, url = start_limited(nats_server.url, tmp_path, **BUSY_ENV)
    assert nats_server.proc is not None
    try:
        (sock,) = hold_idle(url, idle_sockets, 1)
        with frozen(nats_server.proc.pid):  # the first POST's publish waits: whole, in flight
            sock.sendall(post_bytes(ad("whole")) + SLOW_BODY)
            # read by the API: the whole POST begun, the second one's body still coming (not /metrics, whose
            # sampler may read NATS, frozen here: a loaded run's scrape timed out; its count was >= 1 anyway)
            wait_for(lambda: unread_by_server(sock) == 0, what="the API to read the pipelined requests")
            proc.signal(signal.SIGTERM)
            wait_for(lambda: "Shutting down" in proc.output(), what="serve's shutdown begun, the POST unanswered")
        answer = read_answer(sock)
        assert answer.startswith(b"HTTP/1.1 202"), answer  # before: b'' (closed at the SIGTERM)
    finally:
        proc.stop()


def test_a_slow_body_pipelined_behind_an_answered_request_still_makes_room(
    nats_server: EmbeddedNats, tmp_path: Path, idle_sockets: ExitStack
) -> None:
    """review29b F2: GET /healthz and a trickling POST sent in one write: once the GET was answered the connection
    counted busy though the POST's body was still coming, so the slow-body lock-out of attack29c F1 worked again."""
    proc, url = start_limited(nats_server.url, tmp_path, GAMEAD_API__MAX_CONNECTIONS="3")
    try:
        for sock in hold_idle(url, idle_sockets, 3):
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" + SLOW_BODY)
            assert read_answer(sock).startswith(b"HTTP/1.1 200")
        with httpx.Client(timeout=10) as client:
            health = client.get(f"{url}/healthz")
        assert health.status_code == 200, health.text  # before: 503 too_many_connections
    finally:
        proc.stop()



def test_a_client_whose_whole_request_came_before_the_api_read_it_is_answered_not_cut_for_room(
    nats_server: EmbeddedNats, tmp_path: Path, idle_sockets: ExitStack
) -> None:
    """conn55: a loaded API accepts newcomers in the same loop turn as a connection whose whole request already sits
    in the kernel, unread: that connection counted as waiting (never spoke) and the newcomers past the bound cut it,
    its client reading nothing (b'', its ad's fate unknown) though it had spoken. Made certain here, not left to the
    load: the API stopped (SIGSTOP) while the speaker connects and sends a whole POST and 3 silent newcomers connect
    (bound 2), all waiting in the kernel; resumed, it accepts the four before it reads the POST."""
    proc, url = start_limited(nats_server.url, tmp_path, GAMEAD_API__MAX_CONNECTIONS="2")
    try:
        with frozen(proc.pid):
            (speaker,) = hold_idle(url, idle_sockets, 1)
            speaker.sendall(post_bytes(ad("spoke first")))
            silent = hold_idle(url, idle_sockets, 3)
        answer = read_answer(speaker)
        assert answer.startswith(b"HTTP/1.1 202"), answer  # before: b'' (cut for room, its POST unread)
        # the silent ones made the room: the first two cut by the next ones (the third is let in, and stays)
        assert [read_answer(sock) for sock in silent[:2]] == [b"", b""]
    finally:
        proc.stop()
