"""A NATS proxy a test puts between one client and nats-server to have nats-py 2.16 close the client for good
without telling anyone (leftout60A).

nats-py's handshake (``Client._process_connect_init``) writes ``CONNECT`` and ``PING`` and reads one line for the
``PONG``; any other line (an ``INFO``: nats-server sends one to its clients as its cluster changes) leaves the
client *connecting* while its read loop runs. A server ``-ERR`` its read loop meets then closes the
client for good *without* ``disconnected_cb`` nor ``closed_cb`` (``Client._process_err``: ``do_cbs = not
is_connecting``). :class:`InfoForPong` plays that server: it forwards nats-server's ``INFO``, answers the client's
``PING`` with that ``INFO`` again (its ``CONNECT`` and ``PING`` never reach the server), and sends the ``-ERR`` it is
given by :meth:`InfoForPong.error` to every client connected through it, keeping each connection open.
Threads only; stopped by :meth:`InfoForPong.stop`.
"""

from __future__ import annotations

import socket
import threading

from tests.blackhole import Relay


class InfoForPong(Relay):
    """A proxy on ``127.0.0.1:<port>`` to ``target`` (``host``, ``port``) as the module says."""

    def __init__(self, target: tuple[str, int]) -> None:
        super().__init__(target)
        self.answered = threading.Event()  #: set once a handshake's PING was answered with the INFO
        self._clients: list[socket.socket] = []

    def start(self) -> InfoForPong:
        threading.Thread(target=self._accept, daemon=True, name="info-for-pong-accept").start()
        return self

    def error(self, text: str) -> None:
        """Send ``-ERR '<text>'`` to every client whose handshake was answered (nats-server's words for its
        errors, e.g. ``Authorization Violation``)."""
        with self._lock:
            clients = list(self._clients)
        for client in clients:
            client.sendall(f"-ERR '{text}'\r\n".encode())

    def _relay(self, client: socket.socket, upstream: socket.socket) -> None:
        threading.Thread(target=self._answer, args=(client, upstream), daemon=True).start()

    def _answer(self, client: socket.socket, upstream: socket.socket) -> None:
        info, said = b"", b""
        try:
            upstream.settimeout(10)
            while b"\r\n" not in info:
                if not (chunk := upstream.recv(4096)):
                    return
                info += chunk
            info = info[:info.index(b"\r\n") + 2]
            client.sendall(info)
            while b"PING\r\n" not in said:
                if not (chunk := client.recv(4096)):
                    return
                said += chunk
            with self._lock:  # before the answer: the client may act on it before this thread runs again
                self._clients.append(client)
            self.answered.set()
            client.sendall(info)  # where the PONG should be
        except OSError:
            pass
