"""left39a item 2 on a real ``gamead serve`` and nats-server: while the API's operator-reads connection
(``gamead-api-reads``) is down, ``/readyz`` says so (``checks.reads`` ``degraded: …``, the node still ready: submits
do not use it) and ``/v1/stats`` ``nats.reads`` too; both say ``ok``/connected again once it is back.

A proxy between the API and nats-server cuts, and then refuses, only the connection that names itself
``gamead-api-reads`` in its ``CONNECT`` (the main one, ``gamead-api``, goes on). Before the fix: ``GET /ads``
answered 503 while ``/readyz`` said ``{"status": "ready", "checks": {…}}`` with no word of it (no ``reads`` check).
"""

from __future__ import annotations

import socket
import threading
from pathlib import Path
from typing import Any

import httpx

from gamead_core.embedded import EmbeddedNats
from tests.blackhole import Relay
from tests.support import Proc, ad, start_api, wait_for

NAME = b'"gamead-api-reads"'  #: the name in a CONNECT ("name": "gamead-api-reads")


class CutByName(Relay):
    """A NATS proxy that, once :meth:`cut`, closes every connection whose ``CONNECT`` carries :data:`NAME` (those
    made since too) until :meth:`allow`."""

    def __init__(self, target: tuple[str, int]) -> None:
        super().__init__(target)
        self.refusing = False
        self.refused = 0  #: connections closed at their CONNECT since :meth:`cut`
        self._named: list[tuple[socket.socket, socket.socket]] = []

    def start(self) -> CutByName:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def cut(self) -> None:
        with self._lock:
            self.refusing, named, self._named = True, self._named, []
        for pair in named:
            self._shut(*pair)

    def allow(self) -> None:
        self.refusing = False

    def _relay(self, client: socket.socket, upstream: socket.socket) -> None:
        threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
        threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, from_client: bool) -> None:
        seen = b""

        def each(data: bytes) -> bool:
            nonlocal seen
            if from_client and len(seen) < 4096:
                seen += data
                if NAME in seen:
                    with self._lock:
                        if self.refusing:
                            self.refused += 1
                            return False
                        self._named.append((src, dst))
            dst.sendall(data)
            return True

        self._forward(src, each)
        self._shut(src, dst)


def _reads(url: str) -> tuple[str, str, dict[str, Any]]:
    """``/readyz``'s status and ``checks.reads``, and ``/v1/stats`` ``nats.reads``."""
    ready = httpx.get(f"{url}/readyz", timeout=10).json()
    stats = httpx.get(f"{url}/v1/stats", timeout=10).json()
    return ready["status"], ready["checks"].get("reads", "(no reads check)"), stats["nats"].get("reads") or {}


def test_readyz_and_stats_say_the_reads_connection_is_down(tmp_path: Path, procs: list[Proc]) -> None:
    server = EmbeddedNats(tmp_path / "nats").start()
    proxy = CutByName(("127.0.0.1", server.port)).start()
    try:
        api, url = start_api(f"nats://127.0.0.1:{proxy.port}", tmp_path)
        procs.append(api)
        wait_for(lambda: _reads(url)[1] == "ok", what="checks.reads ok")
        proxy.cut()
        down = wait_for(lambda: (r := _reads(url))[1].startswith("degraded") and r, timeout=15,
                        what="checks.reads degraded while the reads connection is cut")
        assert down[0] == "degraded"  # still ready (200): submits do not need it
        assert "gamead-api-reads" in down[1] and "submits go on" in down[1]
        assert down[2]["connected"] is False
        # load59B: nats-py took a reconnect closed at its CONNECT (an EOF where the PONG should be) for a reconnect:
        # counted, and "connected" until its read loop met the EOF (here "degraded" from /readyz, then connected from
        # /v1/stats: a fresh clone at load ~35). Refused reconnects are none (gamead_core.queue.handshake)
        wait_for(lambda: proxy.refused >= 3, timeout=30, what="3 reconnects of the reads connection refused")
        still = _reads(url)
        assert still[1].startswith("degraded") and still[2]["connected"] is False, still
        assert still[2]["reconnects"] == 0, still
        with httpx.Client(base_url=url, timeout=30) as client:
            assert client.post("/ads", json=ad("while the reads connection is down")).status_code == 202
            assert client.get("/ads", params={"limit": 5}).status_code == 503
        proxy.allow()
        # two requests, two moments: a reconnect still settling may say "ok" to one and not yet to the other (a
        # fresh clone's loaded run, session 40): wait until both say it, then check what they say
        back = wait_for(lambda: (r := _reads(url))[1] == "ok" and r[2].get("connected") is True and r, timeout=15,
                        what="checks.reads ok and nats.reads connected again")
        assert back[2]["reconnects"] >= 1
    finally:
        proxy.stop()
        server.stop()
