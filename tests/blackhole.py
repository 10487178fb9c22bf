"""A TCP proxy a test puts between processes and a server, to make the server look wedged without stopping it.

:class:`BlackHole` forwards both ways until :meth:`BlackHole.close_in` is called; from then on it keeps every
connection open and accepts new ones but forwards nothing in either direction and reads nothing from the clients
(their writes fill the sockets' buffers), as a server whose read loop stalled (attack32a F10: nats-server's
"Readloop processing time: 1m20s"); :meth:`BlackHole.open_up` forwards again. Threads only; stopped by
:meth:`BlackHole.stop`.
"""

from __future__ import annotations

import contextlib
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
        self._sending: list[threading.Lock] = []  #: each pump's lock, held from its decision on bytes to their send

    def _pump_lock(self) -> threading.Lock:
        """A lock for one pump, which holds it from the moment it decides what to do with bytes it read (under the
        rules a switch sets) until it sent them, and never while it waits (a hold, a stall): :meth:`_settle`."""
        lock = threading.Lock()
        with self._lock:
            self._sending.append(lock)
        return lock

    def _settle(self, bound: float = 10.0) -> None:
        """Return once every pump sent what it decided on before this call: a switch (``drop``, ``close_in``, ``cut``
        …) that calls it after setting its rule returns only when nothing let through under the old rule is still
        in the proxy (it may still be in the kernel's buffers or the server's queue: a fence through the same
        connection, ``tests.nats_filter.PublishFilter.fence``, says when the server read it). AssertionError when
        a pump could not send for ``bound`` s (its reader not reading: a frozen process)."""
        with self._lock:
            locks = list(self._sending)
        for lock in locks:
            if not lock.acquire(timeout=bound):
                raise AssertionError(f"a proxy's pump could not send for {bound:g} s: is its reader frozen?")
            lock.release()

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
    def _received(src: socket.socket) -> bytes | None:
        """What ``src`` sent within 0.05 s: its bytes, ``b""`` at its end, or None when nothing came (the pump then
        looks at its stop and its state again). Raises OSError or ValueError (``select`` on a closed socket's -1)
        once a socket was closed meanwhile."""
        ready, _, _ = select.select([src], [], [], 0.05)
        return src.recv(65536) if ready else None

    def _forward(self, src: socket.socket, each: Callable[[bytes], bool],
                 sending: threading.Lock | None = None) -> None:
        """Hand each chunk ``src`` sends to ``each`` (it returns False to stop) until ``src`` ends, the relay stops
        or a socket is closed meanwhile: the loop of the proxies' pumps (the caller shuts the sockets after). With
        ``sending`` (:meth:`_pump_lock`), ``each`` runs holding it (one that waits lets it go meanwhile)."""
        while not self._stop.is_set():
            try:
                data = self._received(src)
                if data is None:
                    continue
                if not data:
                    break
                with sending or contextlib.nullcontext():
                    if not each(data):
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


def whole_frames(buf: bytes, payload_ops: tuple[bytes, ...]) -> tuple[list[tuple[bytes, list[bytes], bytes]], bytes]:
    """The NATS protocol's whole frames at the head of ``buf``, each as its operation (upper case), its line's words
    and its bytes (one whose operation is in ``payload_ops`` carries a payload, the line's last word its size), and
    the rest (an incomplete frame): how the proxies that read frames split what they read."""
    frames: list[tuple[bytes, list[bytes], bytes]] = []
    at = 0
    while (end := buf.find(b"\r\n", at)) >= 0:
        words = buf[at:end].split()
        op = words[0].upper() if words else b""
        size = end + 2 - at
        if op in payload_ops:
            size += int(words[-1]) + 2  # the payload (headers included) and its CRLF
            if len(buf) < at + size:
                break
        frames.append((op, words, buf[at:at + size]))
        at += size
    return frames, buf[at:]


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
        """From now on forward nothing and read nothing, keeping every connection open; returns once no byte read
        before is still on its way out of the proxy (:meth:`Relay._settle`)."""
        self._black.set()
        self._settle()

    def stall_back(self) -> None:
        """From now on forward what the clients send, and nothing the server sends back (kept, unread); returns as
        :meth:`close_in` does."""
        self._back.set()
        self._settle()

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
        sending = self._pump_lock()  # the check, the read and the send under it: a switch settles on it
        while not self._stop.is_set():
            if self._held(back):
                self._stop.wait(0.05)
                continue
            try:
                ready, _, _ = select.select([src], [], [], 0.05)
                if not ready:
                    continue
                with sending:
                    if self._held(back):
                        continue
                    data = src.recv(65536)
                    if not data:
                        break
                    dst.sendall(data)
            except (OSError, ValueError):  # closed meanwhile (select on fd -1: ValueError)
                break
        self._shut(src, dst)
