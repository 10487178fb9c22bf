"""A hostile HTTP server on loopback for the CLI's client tests (client37): a raw socket served by threads of the test
process, answering every request as its ``mode`` says — what a broken proxy, a stub or another service at ``--api``
could send, below what ``http.server`` lets a handler do (a status line and then a header byte at a time).

Modes: ``head_trickle`` (``HTTP/1.1 200 OK\\r\\n`` then a header byte each ``gap`` seconds, for ever),
``redirect_loop`` (302 to the path asked), ``redirect_to`` (307 to ``target``, another address), ``gzip_bomb``
(200 ``Content-Encoding: gzip, gzip`` of ``bomb_mib`` MiB of spaces, 2 KB on the wire), ``tiny_chunks`` (an
endless chunked body of 1-byte chunks), ``shape`` (200 with JSON of no gamead answer's shape to every write; a dry
run, ``"dryRun": true``, is answered as the API answers it), ``job_bomb`` (a running job's document, but its NDJSON
follow stream the ``gzip_bomb``), ``hold_writes`` (a dry run answered as ``shape`` does, any other write never
answered until :meth:`HostileServer.stop`: a write out, its outcome unknown), ``running_job`` (a dry run answered
so, a write with a running replay job's document, and that job's NDJSON follow stream its first line and then
nothing: a job followed for ever; ``followed`` counts the streams), ``record`` (204, noting each request's
head).
"""

from __future__ import annotations

import gzip
import json
import socket
import struct
import threading
import zlib
from functools import cache

WRONG = b'{"id": 5, "items": "nope", "override": 1, "results": "nope", "workers": 5, "error": 7}'

#: a running replay job's document (``GET /v1/jobs/ID``)
JOB = json.dumps({"id": "01kbzzzzzzzzzzzzzzzzzzzzzz", "kind": "replay", "state": "running",
                  "selection": {"mode": "all"}, "startedBy": "t", "createdAt": "2026-01-01T00:00:00Z"}).encode()


#: a gzip member's head: magic, deflate, no flags, no time, maximum compression, OS unknown (RFC 1952)
GZIP_HEAD = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"


@cache
def bomb(mib: int) -> bytes:
    """``mib`` MiB of spaces, gzipped, then gzipped again (about 1,000 : 1 each time): a valid gzip member either way.

    The inner layer is one MiB deflated once and repeated: a full flush after it leaves the compressor as it began
    (nothing to refer back to), so each MiB deflates to the same bytes. Deflating all 512 MiB took 1.4 CPU-s, 23 s
    at load ~20 and past the test's give-up at load 35-52 (load57: both gzip-bomb tests of a fresh clone timed out
    while the server was still making it); now ~0.1 CPU-s, the CRC-32 of the spaces."""
    block = b" " * (1 << 20)
    z = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)  # raw deflate: the gzip head and tail written here
    piece = z.compress(block) + z.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(mib):
        crc = zlib.crc32(block, crc)
    tail = z.flush() + struct.pack("<II", crc, (mib << 20) & 0xFFFFFFFF)
    return gzip.compress(GZIP_HEAD + piece * mib + tail, 9)


def _answer(status: str, body: bytes, *headers: str) -> bytes:
    head = [f"HTTP/1.1 {status}", "Content-Type: application/json", f"Content-Length: {len(body)}",
            "Connection: close", *headers]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


class HostileServer:
    """``HostileServer(mode, **options).start()``: listening on a free loopback port (``url``); ``heads``: the
    request heads it read (``record``); :meth:`stop` ends every thread it started."""

    def __init__(self, mode: str, *, gap: float = 0.3, target: str = "", bomb_mib: int = 512) -> None:
        self.mode, self.gap, self.target, self.bomb_mib = mode, gap, target, bomb_mib
        self.heads: list[str] = []
        self.held = 0  #: writes held unanswered (``hold_writes``)
        self.followed = 0  #: job follow streams begun (``running_job``)
        self._stop = threading.Event()
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.2)
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        if mode in ("gzip_bomb", "job_bomb"):
            bomb(bomb_mib)

    def start(self) -> HostileServer:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._sock.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _read_request(self, conn: socket.socket) -> tuple[str, bytes]:
        data = b""
        while b"\r\n\r\n" not in data:
            got = conn.recv(65536)
            if not got:
                raise ConnectionError("closed")
            data += got
        head, _, body = data.partition(b"\r\n\r\n")
        text = head.decode("latin-1")
        length = next((int(line.split(":", 1)[1]) for line in text.split("\r\n")
                       if line.lower().startswith("content-length:")), 0)
        while len(body) < length:
            got = conn.recv(65536)
            if not got:
                break
            body += got
        return text, body

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        try:
            head, body = self._read_request(conn)
            self.heads.append(head)
            path = head.split(" ")[1] if " " in head else "/"
            if self.mode == "head_trickle":
                conn.sendall(b"HTTP/1.1 200 OK\r\n")
                while not self._stop.wait(self.gap):
                    conn.sendall(b"X")
            elif self.mode == "redirect_loop":
                conn.sendall(_answer("302 Found", b"", f"Location: {path}"))
            elif self.mode == "redirect_to":
                conn.sendall(_answer("307 Temporary Redirect", b"", f"Location: {self.target}{path}"))
            elif self.mode == "job_bomb" and "application/x-ndjson" not in head.lower():
                conn.sendall(_answer("200 OK", JOB))
            elif self.mode in ("gzip_bomb", "job_bomb"):
                conn.sendall(_answer("200 OK", bomb(self.bomb_mib), "Content-Encoding: gzip, gzip"))
            elif self.mode == "tiny_chunks":
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
                while not self._stop.is_set():
                    conn.sendall(b"1\r\n \r\n" * 1000)
            elif self.mode == "shape":
                conn.sendall(_answer("200 OK", self._dry(body) or WRONG))
            elif self.mode == "running_job" and "application/x-ndjson" in head.lower():
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\n"
                             b"Transfer-Encoding: chunked\r\n\r\n" + f"{len(JOB) + 1:x}\r\n".encode() + JOB + b"\n\r\n")
                self.followed += 1
                self._stop.wait()
            elif self.mode == "running_job":
                conn.sendall(_answer("200 OK", self._dry(body) or JOB))
            elif self.mode == "hold_writes" and (dry := self._dry(body)) is not None:
                conn.sendall(_answer("200 OK", dry))
            elif self.mode == "hold_writes":
                self.held += 1
                self._stop.wait()
            else:
                conn.sendall(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
        except OSError:  # the client went away: what it should do
            pass
        finally:
            conn.close()

    @staticmethod
    def _dry(body: bytes) -> bytes | None:
        """What the API answers a dry run (``routes_dlq``): a count, or an import's check."""
        try:
            sent = json.loads(body) if body else None
        except ValueError:
            return None
        if not (isinstance(sent, dict) and sent.get("dryRun") is True):
            return None
        if "entries" in sent:
            return json.dumps({"valid": len(sent["entries"]), "dryRun": True}).encode()
        return b'{"matched": 2, "dryRun": true, "complete": true, "scanned": 2}'
