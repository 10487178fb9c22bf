"""A real TCP listener on a free loopback port that cuts every connection: it reads up to ``read_first`` bytes of
the request (or all it gets within 2 s), then resets the connection (``reset``: SO_LINGER 0, an RST) or closes it
without a word (a FIN). What a gamead API that died mid-request, or a link cut in its path, looks like to a client."""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator


def cutting_listener(read_first: int, *, reset: bool = True) -> Iterator[str]:
    """Yield the listener's ``http://127.0.0.1:PORT`` while it serves; stop and close it after (a generator for
    ``yield from`` in a fixture, or :func:`contextlib.contextmanager`)."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            conn.settimeout(2)
            got = 0
            try:
                while got < read_first and (chunk := conn.recv(65536)):
                    got += len(chunk)
            except TimeoutError:
                pass
            if reset:
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(5)
        listener.close()
