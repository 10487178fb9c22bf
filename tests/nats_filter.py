"""A NATS-protocol proxy a test puts between one client process and nats-server, to lose that client's publishes
to some subjects on the way (as a publish in flight when its stream was deleted: repart38, attack38a F2).

:class:`PublishFilter` forwards both ways; the client's bytes are read frame by frame (the client protocol:
``CONNECT``, ``PING``, ``SUB`` … one line each, ``PUB``/``HPUB`` a line and its payload) and, while
:meth:`PublishFilter.drop` is in force, every ``PUB``/``HPUB`` whose subject starts with the prefix it was given
is swallowed whole (counted in :attr:`dropped`): the server never sees it, the client never gets an answer;
while :meth:`PublishFilter.hold` is in force, one to such a subject (a JetStream API request: ``$JS.API.…``) goes
on only after a pause, and the client's later bytes after it. :meth:`PublishFilter.pass_all` forwards everything
again at once. The server's bytes go on as they are, unless :meth:`PublishFilter.stall_deliveries` was called:
then, once that many ``HMSG`` frames (deliveries with headers: a consumer's, never a request's reply) went to the
client, nothing more from the server does for a while, as a server stopped mid-delivery. Threads only;
stopped by :meth:`PublishFilter.stop`.
"""

from __future__ import annotations

import socket
import threading
import time

from tests.blackhole import Relay


class PublishFilter(Relay):
    """A proxy on ``127.0.0.1:<port>`` (:attr:`url`, a ``nats://`` URL) to nats-server at ``target``."""

    def __init__(self, target: tuple[str, int]) -> None:
        super().__init__(target)
        self.url = f"nats://127.0.0.1:{self.port}"
        self._prefix: bytes | None = None
        self._held: tuple[bytes, float] | None = None  #: (subject prefix, seconds) of :meth:`hold`
        self.dropped = 0  #: publishes swallowed so far
        self._stall: tuple[int, float] | None = None  #: (HMSG frames until the held one, seconds) of stall_deliveries

    def start(self) -> PublishFilter:
        threading.Thread(target=self._accept, daemon=True, name="publish-filter-accept").start()
        return self

    def drop(self, prefix: str) -> None:
        """From now on, swallow every publish to a subject starting with ``prefix``."""
        with self._lock:
            self._prefix = prefix.encode()

    def hold(self, prefix: str, seconds: float) -> None:
        """From now on, hold every publish to a subject starting with ``prefix`` ``seconds`` before it goes on."""
        with self._lock:
            self._held = (prefix.encode(), seconds)

    def stall_deliveries(self, after: int, seconds: float) -> None:
        """Once ``after`` more ``HMSG`` frames went to the client, forward nothing from the server for ``seconds``
        (the client's bytes still go on), then everything as before; once."""
        with self._lock:
            self._stall = (after + 1, seconds)  # the frame that brings it to 0 is the first one held

    def pass_all(self) -> None:
        """Forward every publish again, at once."""
        with self._lock:
            self._prefix = self._held = None

    def _relay(self, client: socket.socket, upstream: socket.socket) -> None:
        threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
        threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, frames: bool) -> None:
        """Forward ``src`` → ``dst``; with ``frames`` (the client's side) frame by frame, through :meth:`_kept`."""
        buf = b""
        while not self._stop.is_set():
            try:
                data = self._received(src)
                if data is None:
                    continue
                if not data:
                    break
                if not frames:
                    self._deliver(data, dst)
                    continue
                buf += data
                out, buf = self._kept(buf)
                for pause, kept in out:
                    if pause:
                        time.sleep(pause)
                    dst.sendall(kept)
            except (OSError, ValueError):  # closed meanwhile (select on fd -1: ValueError)
                break
        self._shut(src, dst)

    def _deliver(self, data: bytes, dst: socket.socket) -> None:
        """Send the server's ``data`` to the client, pausing where :meth:`stall_deliveries` asked. An ``HMSG`` split
        between two reads is missed (one frame later at most)."""
        with self._lock:
            stall = self._stall
        if stall is None:
            dst.sendall(data)
            return
        left, seconds = stall
        cut = -1
        while left > 0 and (cut := data.find(b"HMSG ", cut + 1)) >= 0:
            left -= 1
        if left > 0 or cut < 0:
            with self._lock:
                self._stall = (left, seconds)
            dst.sendall(data)
            return
        with self._lock:
            self._stall = None
        dst.sendall(data[:cut])
        self._stop.wait(seconds)
        dst.sendall(data[cut:])

    def _kept(self, buf: bytes) -> tuple[list[tuple[float, bytes]], bytes]:
        """The whole frames at the head of ``buf`` that go on, each with the pause before it, and the rest (an
        incomplete frame)."""
        out: list[tuple[float, bytes]] = []
        while (end := buf.find(b"\r\n")) >= 0:
            line = buf[:end]
            words = line.split()
            op = words[0].upper() if words else b""
            size = end + 2
            if op in (b"PUB", b"HPUB"):
                size += int(words[-1]) + 2  # the payload (headers included) and its CRLF
                if len(buf) < size:
                    break
                with self._lock:
                    prefix, held = self._prefix, self._held
                if prefix is not None and words[1].startswith(prefix):
                    with self._lock:
                        self.dropped += 1
                    buf = buf[size:]
                    continue
                if held is not None and words[1].startswith(held[0]):
                    out.append((held[1], buf[:size]))
                    buf = buf[size:]
                    continue
            out.append((0.0, buf[:size]))
            buf = buf[size:]
        return out, buf
