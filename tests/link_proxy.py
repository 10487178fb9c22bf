"""A TCP proxy a test puts between the CLI and the API, to make the link between them cut or slow (attack33b F5,
F2) without touching either end.

:class:`LinkProxy` forwards both ways; its first ``reset_first`` connections are reset (RST, ``SO_LINGER`` 0) as
soon as the server's answer to them begins to come back — the request reached the server whole and was acted on,
the client gets a reset instead of the answer, as when a proxy or a load balancer between restarts — and with
``delay`` every byte of an answer (of a connection not reset) is held that many seconds before it goes on (a long
link; with ``reset_first``, the resets come first); with ``down_after``, once its resets are done, a connect is
refused (an API SIGKILLed with its answer). Threads only;
stopped by :meth:`LinkProxy.stop`.
"""

from __future__ import annotations

import queue
import socket
import struct
import threading
import time

from tests.blackhole import Relay


class LinkProxy(Relay):
    """A proxy on ``127.0.0.1:<port>`` (:attr:`url`) to ``target`` (``host``, ``port``)."""

    def __init__(self, target: tuple[str, int], *, reset_first: int = 0, delay: float = 0.0,
                 down_after: bool = False) -> None:
        super().__init__(target)
        self.reset_first, self.delay = reset_first, delay
        self.down_after = down_after  #: once its resets are done, its listener closes: each later connect is refused
        self.url = f"http://127.0.0.1:{self.port}"
        self.accepted = 0  #: connections that carried a request so far (a connection opened and left silent, as
        # the CLI's look at what speaks first at an address that never answered, is not one: attack47 F3)
        self.resets = 0  #: connections reset so far

    def start(self) -> LinkProxy:
        threading.Thread(target=self._accept, daemon=True, name="link-proxy-accept").start()
        return self

    def _relay(self, client: socket.socket, upstream: socket.socket) -> None:
        cut = threading.Event()  #: set at its request's first byte when it is one of the first reset_first
        threading.Thread(target=self._pump, args=(client, upstream, False, cut), daemon=True).start()
        threading.Thread(target=self._pump, args=(upstream, client, True, cut), daemon=True).start()

    def _counted(self, cut: threading.Event) -> None:
        with self._lock:
            if self.accepted < self.reset_first:
                cut.set()
            self.accepted += 1

    def _pump(self, src: socket.socket, dst: socket.socket, answer: bool, cut: threading.Event) -> None:
        """Forward ``src`` → ``dst``; an ``answer`` (``dst`` the client) is delayed, or with ``cut`` set (by the
        request's first byte, which comes before it) the client is reset at its first byte."""
        later: queue.Queue[tuple[float, bytes] | None] = queue.Queue()
        writer = None
        if self.delay > 0 and answer:
            writer = threading.Thread(target=self._later, args=(later, dst), daemon=True)
            writer.start()
        reset, first = False, True

        def each(data: bytes) -> bool:
            nonlocal reset, first
            if not answer and first:
                self._counted(cut)
            first = False
            if answer and cut.is_set():
                with self._lock:
                    self.resets += 1
                    down = self.down_after and self.resets >= self.reset_first
                if down:  # the API gone with its answer (SIGKILLed mid-batch): refused from now on
                    self._listener.close()
                dst.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                dst.close()  # RST: the client gets "connection reset by peer", not this answer
                src.close()
                reset = True
                return False
            if writer is not None:
                later.put((time.monotonic() + self.delay, data))
            else:
                dst.sendall(data)
            return True

        self._forward(src, each)
        later.put(None)  # its writer, if any, ends (after what it holds, unless reset)
        if reset:
            return
        if writer is not None:
            writer.join(timeout=self.delay + 5)
        self._shut(src, dst)

    def _later(self, later: queue.Queue[tuple[float, bytes] | None], dst: socket.socket) -> None:
        """Send each chunk of ``later`` once its time comes, in order."""
        while (item := later.get()) is not None:
            due, data = item
            if self._stop.wait(max(0.0, due - time.monotonic())):
                return
            try:
                dst.sendall(data)
            except OSError:
                return
