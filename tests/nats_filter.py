"""A NATS-protocol proxy a test puts between one client process and nats-server, to lose that client's publishes
to some subjects on the way (as a publish in flight when its stream was deleted: repart38, attack38a F2).

:class:`PublishFilter` forwards both ways; the client's bytes are read frame by frame (the client protocol:
``CONNECT``, ``PING``, ``SUB`` … one line each, ``PUB``/``HPUB`` a line and its payload) and, while
:meth:`PublishFilter.drop` is in force, every ``PUB``/``HPUB`` whose subject starts with the prefix it was given
is swallowed whole (counted in :attr:`dropped`): the server never sees it, the client never gets an answer;
while :meth:`PublishFilter.refuse` is in force, one goes on to a subject no one listens on (counted in
:attr:`refused`): nats-server answers a request so ``503`` (no responders), as a cluster's server does before it
knows a fresh consumer's leader listens (flake42);
while :meth:`PublishFilter.hold` is in force, one to such a subject (a JetStream API request: ``$JS.API.…``) goes
on only after a pause, and the client's later bytes after it. :meth:`PublishFilter.pass_all` forwards everything
again at once. The server's bytes go on as they are, unless :meth:`PublishFilter.stall_deliveries` was called:
then, once that many ``MSG``/``HMSG`` frames on a subject starting with the one given (a consumer's delivery
carries its message's own subject, a request's reply its inbox) went to the client, nothing more from the server
does for a while, or until :meth:`PublishFilter.release` (or the client's request that
:meth:`PublishFilter.release_on` names), as a server stopped mid-delivery: the test knows the read stands at that
delivery (:attr:`PublishFilter.holds`), however loaded the machine (flake39: a fault timed by polling for a state
let a loaded run pass that state first); after :meth:`PublishFilter.lose_deliveries`, the next such frames are
swallowed whole (:attr:`PublishFilter.lost`): deliveries nats-server made that never reach the client, as on a
link that broke under them (attack40b F4); after :meth:`PublishFilter.lose_unsubscribed`, a stalled delivery whose
subscription the client unsubscribed (``UNSUB``) while it was held is swallowed as it would go on (counted in
:attr:`PublishFilter.lost`), as nats-server loses a delivery it routes after it took the ``UNSUB`` though it picked
the pull request before (chaos47 F2). Threads only; stopped by :meth:`PublishFilter.stop`.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable

from tests.blackhole import Relay

NOBODY = b"gamead.test.nobody"  #: the subject :meth:`PublishFilter.refuse` sends publishes on to


class PublishFilter(Relay):
    """A proxy on ``127.0.0.1:<port>`` (:attr:`url`, a ``nats://`` URL) to nats-server at ``target``."""

    def __init__(self, target: tuple[str, int]) -> None:
        super().__init__(target)
        self.url = f"nats://127.0.0.1:{self.port}"
        self._prefix: bytes | None = None
        self._held: tuple[bytes, float] | None = None  #: (subject prefix, seconds) of :meth:`hold`
        self.dropped = 0  #: publishes swallowed so far
        self._refusing: bytes | None = None  #: subject prefix of :meth:`refuse`
        self.refused = 0  #: publishes sent on to :data:`NOBODY` so far
        self._drops_left: int | None = None  #: publishes :meth:`drop` still swallows (None: all)
        #: (deliveries until the held one, seconds or None: until released, subject prefix) of stall_deliveries
        self._stall: tuple[int, float | None, bytes] | None = None
        self._released = threading.Event()
        self.holds = 0  #: stalls begun so far (the server's bytes held from the delivery they stopped at)
        self._release_on: bytes | None = None  #: subject prefix of a client publish that ends the stall
        self._losing: tuple[bytes, int] | None = None  #: (subject prefix, frames left) of :meth:`lose_deliveries`
        self.lost = 0  #: deliveries swallowed so far
        self._unsubscribed: set[bytes] | None = None  #: sids the client unsubscribed, once lose_unsubscribed() is on

    def start(self) -> PublishFilter:
        threading.Thread(target=self._accept, daemon=True, name="publish-filter-accept").start()
        return self

    def drop(self, prefix: str, count: int | None = None) -> None:
        """From now on, swallow every publish to a subject starting with ``prefix`` (``count``: only the next that
        many, then forward them again: a request lost in flight)."""
        with self._lock:
            self._prefix, self._drops_left = prefix.encode(), count

    def refuse(self, prefix: str) -> None:
        """From now on, send every publish to a subject starting with ``prefix`` on to :data:`NOBODY` instead."""
        with self._lock:
            self._refusing = prefix.encode()

    def hold(self, prefix: str, seconds: float) -> None:
        """From now on, hold every publish to a subject starting with ``prefix`` ``seconds`` before it goes on."""
        with self._lock:
            self._held = (prefix.encode(), seconds)

    def stall_deliveries(self, after: int, seconds: float | None, subject: str) -> None:
        """Once ``after`` more ``MSG``/``HMSG`` frames on a subject starting with ``subject`` (deliveries) went to
        the client, forward nothing from the server for ``seconds`` (None: until :meth:`release`; the client's bytes
        still go on), then everything as before; once (call it again, then :meth:`release`, to hold a later
        delivery too)."""
        with self._lock:
            self._stall = (after + 1, seconds, subject.encode())  # the frame that brings it to 0 is the first held

    def lose_deliveries(self, subject: str, count: int = 1) -> None:
        """Swallow the next ``count`` ``MSG``/``HMSG`` frames from the server on a subject starting with ``subject``
        (a consumer's delivery carries its message's subject): the server counts them delivered, the client never
        sees them."""
        with self._lock:
            self._losing = (subject.encode(), count)

    def lose_unsubscribed(self) -> None:
        """From now on, a delivery :meth:`stall_deliveries` held is swallowed when it goes on if the client sent an
        ``UNSUB`` of its subscription meanwhile (the server routed it after taking the ``UNSUB``: chaos47 F2)."""
        with self._lock:
            self._unsubscribed = set()

    def release(self) -> None:
        """End the stall under way (:attr:`holds` tells one began): the held bytes go on at once."""
        self._released.set()

    def release_on(self, prefix: str) -> None:
        """End the stall under way once the client publishes to a subject starting with ``prefix`` (a request it
        makes on giving up waiting: its answer then comes after the held bytes)."""
        with self._lock:
            self._release_on = prefix.encode()

    def stop(self) -> None:
        self._released.set()
        super().stop()

    def pass_all(self) -> None:
        """Forward every publish again, at once."""
        with self._lock:
            self._prefix = self._held = self._refusing = None

    def _relay(self, client: socket.socket, upstream: socket.socket) -> None:
        threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
        threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, frames: bool) -> None:
        """Forward ``src`` → ``dst``; with ``frames`` (the client's side) frame by frame, through :meth:`_kept`."""
        buf = b""

        def each(data: bytes) -> bool:
            nonlocal buf
            if not frames:
                data, buf = self._unlost(buf + data)
                if data:
                    self._deliver(data, dst)
                return True
            out, buf = self._kept(buf + data)
            for pause, kept in out:
                if pause:
                    time.sleep(pause)
                dst.sendall(kept)
            return True

        self._forward(src, each)
        self._shut(src, dst)

    def _deliver(self, data: bytes, dst: socket.socket) -> None:
        """Send the server's ``data`` to the client, pausing where :meth:`stall_deliveries` asked. A frame split
        between two reads is missed (one frame later at most)."""
        while data:
            with self._lock:
                stall = self._stall
            if stall is None:
                dst.sendall(data)
                return
            left, seconds, subject = stall
            cut = -1
            while left > 0 and (cut := _next_delivery(data, cut + 1, subject)) >= 0:
                left -= 1
            if left > 0 or cut < 0:
                with self._lock:
                    self._stall = (left, seconds, subject)
                dst.sendall(data)
                return
            with self._lock:
                self._stall = None
            dst.sendall(data[:cut])
            self._released.clear()
            with self._lock:
                self.holds += 1
            end = None if seconds is None else time.monotonic() + seconds
            while not self._stop.is_set() and not self._released.wait(0.05):
                if end is not None and time.monotonic() >= end:
                    break
            data = self._unless_unsubscribed(data[cut:])  # a stall armed again meanwhile counts from the held frame on

    def _unless_unsubscribed(self, data: bytes) -> bytes:
        """``data`` (the server's bytes from a held delivery on), its first frame swallowed when
        :meth:`lose_unsubscribed` is on and the client unsubscribed that frame's subscription while it was held."""
        end = data.find(b"\r\n")
        words = data[:end].split() if end >= 0 else []
        with self._lock:
            gone = self._unsubscribed is not None and len(words) > 2 and words[2] in self._unsubscribed
        if not gone:
            return data
        with self._lock:
            self.lost += 1
        return data[end + 2 + int(words[-1]) + 2:]

    def _unlost(self, buf: bytes) -> tuple[bytes, bytes]:
        """The server's bytes in ``buf`` that go on while :meth:`lose_deliveries` is in force (whole frames, the
        deliveries it swallows left out), and the rest (an incomplete frame); all of ``buf`` otherwise."""
        out = bytearray()
        while (losing := self._losing) is not None and (end := buf.find(b"\r\n")) >= 0:
            words = buf[:end].split()
            size = end + 2
            if words and words[0].upper() in (b"MSG", b"HMSG"):
                size += int(words[-1]) + 2  # the payload (headers included) and its CRLF
                if len(buf) < size:
                    return bytes(out), buf
                if words[1].startswith(losing[0]):
                    with self._lock:
                        self.lost += 1
                        self._losing = (losing[0], losing[1] - 1) if losing[1] > 1 else None
                    buf = buf[size:]
                    continue
            out += buf[:size]
            buf = buf[size:]
        if self._losing is None:
            return bytes(out) + buf, b""
        return bytes(out), buf

    def _kept(self, buf: bytes) -> tuple[list[tuple[float, bytes]], bytes]:
        """The whole frames at the head of ``buf`` that go on, each with the pause before it, and the rest (an
        incomplete frame)."""
        out: list[tuple[float, bytes]] = []
        while (end := buf.find(b"\r\n")) >= 0:
            line = buf[:end]
            words = line.split()
            op = words[0].upper() if words else b""
            size = end + 2
            if op == b"UNSUB" and len(words) > 1:
                with self._lock:
                    if self._unsubscribed is not None:
                        self._unsubscribed.add(words[1])
            if op in (b"PUB", b"HPUB"):
                size += int(words[-1]) + 2  # the payload (headers included) and its CRLF
                if len(buf) < size:
                    break
                with self._lock:
                    prefix, held, release_on = self._prefix, self._held, self._release_on
                    refusing = self._refusing
                if release_on is not None and words[1].startswith(release_on):
                    self._released.set()
                if prefix is not None and words[1].startswith(prefix):
                    with self._lock:
                        self.dropped += 1
                        if self._drops_left is not None:
                            self._drops_left -= 1
                            if self._drops_left <= 0:
                                self._prefix = None
                    buf = buf[size:]
                    continue
                if refusing is not None and words[1].startswith(refusing):
                    with self._lock:
                        self.refused += 1
                    out.append((0.0, b" ".join([words[0], NOBODY, *words[2:]]) + buf[end:size]))
                    buf = buf[size:]
                    continue
                if held is not None and words[1].startswith(held[0]):
                    out.append((held[1], buf[:size]))
                    buf = buf[size:]
                    continue
            out.append((0.0, buf[:size]))
            buf = buf[size:]
        return out, buf


def _next_delivery(data: bytes, start: int, subject: bytes) -> int:
    """Where the first ``MSG``/``HMSG`` frame at or after ``start`` in ``data`` (the server's bytes) on a subject
    starting with ``subject`` begins, or -1."""
    at = start - 1
    while (at := data.find(b"MSG ", at + 1)) >= 0:
        begin = at - 1 if at and data[at - 1:at] == b"H" else at
        if (begin == 0 or data[begin - 1:begin] == b"\n") and data.startswith(subject, at + 4) and begin >= start:
            return begin
    return -1


def stalled_read_error(run: Callable[[], int], proxy: PublishFilter, total: int, what: str) -> Exception:
    """Run ``run`` (a whole-stream read behind ``proxy`` whose deliveries stall; it returns how many it read) and
    return the error it must end with (``QueueUnavailable``: ``ScanIncomplete``, or the read's probe itself
    unanswered), failing the test when it ended quietly instead (``what``: of ``total`` things); ``proxy`` stopped
    either way. A ``ScanIncomplete`` must count fewer than ``total`` read."""
    import pytest

    from gamead_core.errors import QueueUnavailable
    from gamead_core.queue.scan import ScanIncomplete

    try:
        with pytest.raises(QueueUnavailable) as failed:
            read = run()
            pytest.fail(f"the {what} read ended quietly after {read} of {total:,}")
    finally:
        proxy.stop()
    if isinstance(failed.value, ScanIncomplete):
        assert failed.value.code == "scan_incomplete" and failed.value.details["read"] < total
    return failed.value

