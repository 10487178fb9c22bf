"""A slow-header flood on a real worker's ``/metrics`` port (attack25, finding 1): 500 connections that each send
half a request and then one header line every half second, never finishing.

Before: prometheus-client's ``start_http_server`` started a thread per connection, with no cap and no read
timeout: the worker grew by a thread and ~20 kB per connection held (3,000 took it from 72 MB to 236 MB, its
heartbeat silent 31.7 s until ``gamead up`` killed it) and never closed one (200 half-sent requests were still
open after 150 s). Now the worker's thread count stays where it was, its RSS barely moves, every connection is
closed by the worker within the read deadline (whole-request, not per byte) and a normal scrape still answers
during the flood."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import httpx

from gamead_core.telemetry.metrics_listener import MAX_CONNECTIONS, READ_TIMEOUT
from tests.ports import start_metered_worker
from tests.support import wait_for

FLOOD = 500


def _status(pid: int) -> tuple[int, int]:
    """(threads, RSS in kB) of process ``pid``, from /proc."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["Threads"]), int(fields["VmRSS"].split()[0])


def _closed_by_server(sock: socket.socket) -> bool:
    """True once the worker closed ``sock`` (EOF or reset); an answer it sent first (408, 503) is read and dropped."""
    try:
        while data := sock.recv(65536, socket.MSG_DONTWAIT):
            del data
        return True  # b"": end of stream
    except BlockingIOError:
        return False
    except OSError:
        return True  # reset


def test_a_slow_header_flood_neither_grows_the_worker_nor_keeps_its_connections(fresh_nats, procs,  # type: ignore[no-untyped-def]
                                                                               tmp_path: Path) -> None:
    nats = fresh_nats()
    worker, port = start_metered_worker(nats.url, tmp_path, worker_id="flooded", ready=True)
    procs.append(worker)
    url = f"http://127.0.0.1:{port}/metrics"
    assert httpx.get(url, timeout=10).status_code == 200  # its page made once: the baseline includes that
    threads_before, rss_before = _status(worker.pid)

    socks: list[socket.socket] = []
    stop = threading.Event()

    def trickle() -> None:  # one more header line on every connection every half second, never the blank line
        while not stop.wait(0.5):
            for s in list(socks):
                try:
                    s.send(b"X-a: b\r\n", socket.MSG_DONTWAIT)
                except OSError:
                    pass

    trickler = threading.Thread(target=trickle, daemon=True)
    try:
        for _ in range(FLOOD):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
            socks.append(s)
        trickler.start()
        peak = [0, 0]

        def sample() -> None:
            threads, rss = _status(worker.pid)
            peak[0], peak[1] = max(peak[0], threads), max(peak[1], rss)

        sample()
        # a normal scrape during the flood answers, with the worker's series
        scraped = httpx.get(url, timeout=10)
        assert scraped.status_code == 200 and "process_resident_memory_bytes" in scraped.text
        sample()
        assert peak[0] <= threads_before + 1, f"{peak[0]} threads with {FLOOD} connections, {threads_before} before"

        def all_closed() -> bool:
            sample()
            return all(_closed_by_server(s) for s in socks)

        # whole-request deadline, not per byte: the trickled connections are closed all the same
        wait_for(all_closed, timeout=READ_TIMEOUT + 20, interval=0.5,
                 what=f"the worker to close all {FLOOD} slow connections (read deadline {READ_TIMEOUT:g}s)")
    finally:
        stop.set()
        for s in socks:
            s.close()
    assert worker.alive()
    # no thread per connection: the page is made on the event loop, at most one more thread than before
    assert peak[0] <= threads_before + 1, f"{peak[0]} threads during the flood, {threads_before} before"
    # bounded memory: ~20 kB a connection before (10 MB for 500); now at most MAX_CONNECTIONS are held at once
    assert peak[1] - rss_before < 4096, f"RSS grew by {peak[1] - rss_before} kB with {MAX_CONNECTIONS} connections held"
    assert httpx.get(url, timeout=10).status_code == 200
