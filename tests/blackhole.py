"""A TCP proxy a test puts between processes and a server, to make the server look wedged without stopping it.

:class:`BlackHole` forwards both ways until :meth:`BlackHole.close_in` is called; from then on it keeps every
connection open and accepts new ones but forwards nothing in either direction and reads nothing from the clients
(their writes fill the sockets' buffers), as a server whose read loop stalled (attack32a F10: nats-server's
"Readloop processing time: 1m20s"); :meth:`BlackHole.open_up` forwards again. Threads only; stopped by
:meth:`BlackHole.stop`.
"""

from __future__ import annotations

import select
import socket
import threading
from collections.abc import Callable


class Relay:
    """A TCP relay on ``127.0.0.1:<port>`` to ``target`` (``host``, ``port``): accepts, connects each client to the
    target and hands the pair to :meth:`_relay` (a pump thread per direction in the subclasses); :meth:`stop`
    closes the listener and every socket. The base of :class:`BlackHole`, ``tests.link_proxy.LinkProxy`` and
    ``tests.nats_filter.PublishFilter``."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._socks: list[socket.socket] = []
        self._lock = threading.Lock()

    def stop(self) -> None:
        self._stop.set()
        self._listener.close()
        with self._lock:
            for s in self._socks:
                s.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._socks += [client, upstream]
            self._relay(client, upstream)

    def _relay(self, client: socket.socket, upstream: socket.socket) -> None:
        raise NotImplementedError

    @staticmethod
    def _received(src: socket.socket, held: Callable[[], bool] = lambda: False) -> bytes | None:
        """What ``src`` sent within 0.05 s: its bytes, ``b""`` at its end, or None when nothing came or ``held()``
        says not to read now (the pump then looks at its stop and its state again). Raises OSError or ValueError
        (``select`` on a closed socket's -1) once a socket was closed meanwhile."""
        ready, _, _ = select.select([src], [], [], 0.05)
        return src.recv(65536) if ready and not held() else None

    def _forward(self, src: socket.socket, each: Callable[[bytes], bool]) -> None:
        """Hand each chunk ``src`` sends to ``each`` (it returns False to stop) until ``src`` ends, the relay stops
        or a socket is closed meanwhile: the loop of the proxies' pumps (the caller shuts the sockets after)."""
        while not self._stop.is_set():
            try:
                data = self._received(src)
                if data is None:
                    continue
                if not data or not each(data):
                    break
            except (OSError, ValueError):  # closed meanwhile (select on fd -1: ValueError)
                break

    @staticmethod
    def _shut(*socks: socket.socket) -> None:
        """Shut each of ``socks`` both ways, closed ones too (a pump's end: the other pump's ``recv`` ends)."""
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class BlackHole(Relay):
    """A proxy on ``127.0.0.1:<port>`` (:attr:`url_port`) to ``target`` (``host``, ``port``)."""

    def __init__(self, target: tuple[str, int]) -> None:
        super().__init__(target)
        self._black = threading.Event()
        self._back = threading.Event()  #: the server→client direction alone is stalled (stall_back)

    def start(self) -> BlackHole:
        threading.Thread(target=self._accept, daemon=True, name="blackhole-accept").start()
        return self

    def close_in(self) -> None:
        """From now on forward nothing and read nothing, keeping every connection open."""
        self._black.set()

    def stall_back(self) -> None:
        """From now on forward what the clients send, and nothing the server sends back (kept, unread)."""
        self._back.set()

    def open_up(self) -> None:
        """Forward again (both directions)."""
        self._black.clear()
        self._back.clear()

    @property
    def black(self) -> bool:
        return self._black.is_set()

    def _relay(self, client: socket.socket, upstream: socket.socket) -> None:
        threading.Thread(target=self._pump, args=(client, upstream, False), daemon=True).start()
        threading.Thread(target=self._pump, args=(upstream, client, True), daemon=True).start()

    def _held(self, back: bool) -> bool:
        return self._black.is_set() or (back and self._back.is_set())

    def _pump(self, src: socket.socket, dst: socket.socket, back: bool) -> None:
        while not self._stop.is_set():
            if self._held(back):
                self._stop.wait(0.05)
                continue
            try:
                data = self._received(src, lambda: self._held(back))
                if data is None:
                    continue
                if not data:
                    break
                dst.sendall(data)
            except (OSError, ValueError):  # closed meanwhile (select on fd -1: ValueError)
                break
        self._shut(src, dst)
