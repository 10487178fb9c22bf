"""A NATS-protocol proxy a test puts between one client process and nats-server, to lose that client's publishes
to some subjects on the way (as a publish in flight when its stream was deleted: repart38, attack38a F2).

:class:`PublishFilter` forwards both ways; the client's bytes are read frame by frame (the client protocol:
``CONNECT``, ``PING``, ``SUB`` … one line each, ``PUB``/``HPUB`` a line and its payload) and, while
:meth:`PublishFilter.drop` is in force, every ``PUB``/``HPUB`` whose subject starts with the prefix it was given
is swallowed whole (counted in :attr:`dropped`): the server never sees it, the client never gets an answer.
:meth:`PublishFilter.pass_all` forwards everything again. The server's bytes go on as they are. Threads only;
stopped by :meth:`PublishFilter.stop`.
"""

from __future__ import annotations

import select
import socket
import threading

from tests.blackhole import Relay


class PublishFilter(Relay):
    """A proxy on ``127.0.0.1:<port>`` (:attr:`url`, a ``nats://`` URL) to nats-server at ``target``."""

    def __init__(self, target: tuple[str, int]) -> None:
        super().__init__(target)
        self.url = f"nats://127.0.0.1:{self.port}"
        self._prefix: bytes | None = None
        self.dropped = 0  #: publishes swallowed so far

    def start(self) -> PublishFilter:
        threading.Thread(target=self._accept, daemon=True, name="publish-filter-accept").start()
        return self

    def drop(self, prefix: str) -> None:
        """From now on, swallow every publish to a subject starting with ``prefix``."""
        with self._lock:
            self._prefix = prefix.encode()

    def pass_all(self) -> None:
        """Forward every publish again."""
        with self._lock:
            self._prefix = None

    def _relay(self, client: socket.socket, upstream: socket.socket) -> None:
        threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
        threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, frames: bool) -> None:
        """Forward ``src`` → ``dst``; with ``frames`` (the client's side) frame by frame, through :meth:`_kept`."""
        buf = b""
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([src], [], [], 0.05)
                if not ready:
                    continue
                data = src.recv(65536)
                if not data:
                    break
                if not frames:
                    dst.sendall(data)
                    continue
                buf += data
                out, buf = self._kept(buf)
                if out:
                    dst.sendall(out)
            except (OSError, ValueError):  # closed meanwhile (select on fd -1: ValueError)
                break
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _kept(self, buf: bytes) -> tuple[bytes, bytes]:
        """The whole frames at the head of ``buf`` that go on (joined), and the rest (an incomplete frame)."""
        out = []
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
                    prefix = self._prefix
                if prefix is not None and words[1].startswith(prefix):
                    with self._lock:
                        self.dropped += 1
                    buf = buf[size:]
                    continue
            out.append(buf[:size])
            buf = buf[size:]
        return b"".join(out), buf
