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
the pull request before (chaos47 F2). Both directions are read frame by frame, whole frames only (a frame split
between two reads is counted once it is whole).

A switch (``drop``, ``refuse``, ``hold``, ``pass_all``, ``stall_deliveries``, ``lose_deliveries``) returns once
nothing the old rule let through is still in the proxy: each frame's decision and its send happen under one lock
per direction, which a switch takes after setting its rule (race59: ``drop`` had returned while publishes it let
through were still being sent, and nats-server read them after a look through another connection). Leaving the
proxy is not reaching the server: after a switch, a test that judges nats-server's state through another connection
first calls :meth:`PublishFilter.fence` (a ``PING`` after those frames on each connection, its ``PONG`` back), or
waits for a later frame of the same connection that the new rule caught (:attr:`PublishFilter.dropped` growing).
Threads only; stopped by :meth:`PublishFilter.stop`.
"""

from __future__ import annotations

import collections
import socket
import threading
import time
from collections.abc import Callable

from tests.blackhole import Relay, whole_frames

NOBODY = b"gamead.test.nobody"  #: the subject :meth:`PublishFilter.refuse` sends publishes on to


_DELIVERIES = (b"MSG", b"HMSG")


class _Link:
    """One client connection through the proxy: the locks its two pumps hold from a decision on bytes to their send
    (:meth:`Relay._pump_lock`), and the PINGs sent to the server on it, in order (None: the client's own; an event:
    one of :meth:`PublishFilter.fence`, set when its PONG comes back)."""

    def __init__(self, upstream: socket.socket, up: threading.Lock, down: threading.Lock) -> None:
        self.upstream, self.up, self.down = upstream, up, down
        self.pings: collections.deque[threading.Event | None] = collections.deque()
        self.connected = False  #: its CONNECT went on (nats-server answers a PING only after it)
        self.ended = False


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
        self._links: list[_Link] = []

    def start(self) -> PublishFilter:
        threading.Thread(target=self._accept, daemon=True, name="publish-filter-accept").start()
        return self

    def drop(self, prefix: str, count: int | None = None) -> None:
        """From now on, swallow every publish to a subject starting with ``prefix`` (``count``: only the next that
        many, then forward them again: a request lost in flight). Like every switch here it returns once nothing
        the old rule let through is still in the proxy; :meth:`fence` says when nats-server has read it."""
        with self._lock:
            self._prefix, self._drops_left = prefix.encode(), count
        self._settle()

    def refuse(self, prefix: str) -> None:
        """From now on, send every publish to a subject starting with ``prefix`` on to :data:`NOBODY` instead."""
        with self._lock:
            self._refusing = prefix.encode()
        self._settle()

    def hold(self, prefix: str, seconds: float) -> None:
        """From now on, hold every publish to a subject starting with ``prefix`` ``seconds`` before it goes on."""
        with self._lock:
            self._held = (prefix.encode(), seconds)
        self._settle()

    def stall_deliveries(self, after: int, seconds: float | None, subject: str) -> None:
        """Once ``after`` more ``MSG``/``HMSG`` frames on a subject starting with ``subject`` (deliveries) went to
        the client, forward nothing from the server for ``seconds`` (None: until :meth:`release`; the client's bytes
        still go on), then everything as before; once (call it again, then :meth:`release`, to hold a later
        delivery too). Frames are counted whole, however the server's bytes were split between reads."""
        with self._lock:
            self._stall = (after + 1, seconds, subject.encode())  # the frame that brings it to 0 is the first held
        self._settle()

    def lose_deliveries(self, subject: str, count: int = 1) -> None:
        """Swallow the next ``count`` ``MSG``/``HMSG`` frames from the server on a subject starting with ``subject``
        (a consumer's delivery carries its message's subject): the server counts them delivered, the client never
        sees them."""
        with self._lock:
            self._losing = (subject.encode(), count)
        self._settle()

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
        """Forward every publish again, at once (a publish already held goes on when its hold ends)."""
        with self._lock:
            self._prefix = self._held = self._refusing = None
        self._settle()

    def fence(self, timeout: float = 30.0) -> None:
        """Return once nats-server has read every frame the proxy forwarded before this call, on every client
        connection: a ``PING`` sent after them on each (after its ``CONNECT``) and its ``PONG`` come back
        (swallowed: the client never sees it). The ordering point after a switch for a test that then judges the
        server's state through another connection: what the old rule let through was read before that look. (A
        JetStream request the server read may still wait in its queues a moment.) Not while
        :meth:`stall_deliveries` holds a connection's answers; AssertionError after ``timeout`` s without a PONG."""
        with self._lock:
            links = [link for link in self._links if link.connected and not link.ended]
        waits = []
        for link in links:
            pong = threading.Event()
            with link.up:
                link.pings.append(pong)
                try:
                    link.upstream.sendall(b"PING\r\n")
                except OSError:
                    continue  # the connection ended: nothing more reaches the server on it
            waits.append((link, pong))
        deadline = time.monotonic() + timeout
        for link, pong in waits:
            while not pong.wait(0.05) and not link.ended:
                if time.monotonic() >= deadline:
                    raise AssertionError(f"nats-server answered no PING of the proxy's fence within {timeout:g} s")

    def _relay(self, client: socket.socket, upstream: socket.socket) -> None:
        link = _Link(upstream, self._pump_lock(), self._pump_lock())
        with self._lock:
            self._links.append(link)
        threading.Thread(target=self._pump, args=(client, upstream, link, True), daemon=True).start()
        threading.Thread(target=self._pump, args=(upstream, client, link, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, link: _Link, up: bool) -> None:
        """Forward ``src`` → ``dst`` whole frame by whole frame: the client's (``up``) through :meth:`_kept`, the
        server's through :meth:`_frames` and :meth:`_deliver`; each decision and its send under the pump's lock."""
        buf = b""

        def each(data: bytes) -> bool:
            nonlocal buf
            buf += data
            if not up:
                frames, buf = self._frames(buf, link)
                self._deliver(frames, dst, link.down)
                return True
            while True:
                kept, held, buf = self._kept(buf, link)
                if kept:
                    dst.sendall(kept)
                if held is None:
                    return True
                link.up.release()  # the pause: a switch or a fence meanwhile need not wait for it
                try:
                    time.sleep(held[0])
                finally:
                    link.up.acquire()
                if held[1]:
                    dst.sendall(held[1])

        try:
            self._forward(src, each, link.up if up else link.down)
        finally:
            link.ended = True
            for pong in list(link.pings):
                if pong is not None:
                    pong.set()  # nothing more reaches the server on this connection
            self._shut(src, dst)

    def _frames(self, buf: bytes, link: _Link) -> tuple[list[tuple[bytes | None, bytes | None, bytes]], bytes]:
        """The server's whole frames at the head of ``buf`` that go on, each with its subject and subscription id
        (deliveries only), and the rest (an incomplete frame); the PONGs of :meth:`fence` and the deliveries
        :meth:`lose_deliveries` swallows left out."""
        frames: list[tuple[bytes | None, bytes | None, bytes]] = []
        whole, rest = whole_frames(buf, _DELIVERIES)
        for op, words, frame in whole:
            if op == b"PONG" and link.pings:
                pong = link.pings.popleft()  # PONGs come in the order of the PINGs that reached the server
                if pong is not None:
                    pong.set()
                    continue
            if op in _DELIVERIES:
                with self._lock:
                    losing = self._losing
                    if losing is not None and words[1].startswith(losing[0]):
                        self.lost += 1
                        self._losing = (losing[0], losing[1] - 1) if losing[1] > 1 else None
                        continue
                frames.append((words[1], words[2], frame))
            else:
                frames.append((None, None, frame))
        return frames, rest

    def _deliver(self, frames: list[tuple[bytes | None, bytes | None, bytes]], dst: socket.socket,
                 sending: threading.Lock) -> None:
        """Send the server's ``frames`` to the client (``sending`` held, let go while a stall waits), stopping at
        the delivery :meth:`stall_deliveries` asked for."""
        while frames:
            at = len(frames)
            with self._lock:
                if self._stall is not None:
                    left, seconds, subject = self._stall
                    for i, (on, _, _) in enumerate(frames):
                        if on is not None and on.startswith(subject):
                            left -= 1
                            if left == 0:
                                at = i
                                break
                    self._stall = None if at < len(frames) else (left, seconds, subject)
            dst.sendall(b"".join(frame for _, _, frame in frames[:at]))
            if at == len(frames):
                return
            self._released.clear()
            with self._lock:
                self.holds += 1
            end = None if seconds is None else time.monotonic() + seconds
            sending.release()
            try:
                while not self._stop.is_set() and not self._released.wait(0.05):
                    if end is not None and time.monotonic() >= end:
                        break
            finally:
                sending.acquire()
            frames = frames[at:] if not self._unsubscribed_meanwhile(frames[at][1]) else frames[at + 1:]
            # a stall armed again meanwhile counts from the held frame on

    def _unsubscribed_meanwhile(self, sid: bytes | None) -> bool:
        """Whether a held delivery on subscription ``sid`` is swallowed as it goes on (:meth:`lose_unsubscribed`)."""
        with self._lock:
            gone = self._unsubscribed is not None and sid in self._unsubscribed
            self.lost += gone
        return gone

    def _kept(self, buf: bytes, link: _Link) -> tuple[bytes, tuple[float, bytes] | None, bytes]:
        """The client's whole frames at the head of ``buf`` that go on now, the first one :meth:`hold` holds (its
        pause, its bytes; ``(0.0, b"")`` before a dropped one, which is counted in :attr:`dropped` only once the
        frames before it were sent) or None, and the rest (what comes after the held one, and an incomplete
        frame)."""
        out = bytearray()
        frames, rest = whole_frames(buf, (b"PUB", b"HPUB"))
        for i, (op, words, frame) in enumerate(frames):
            if op == b"UNSUB" and len(words) > 1:
                with self._lock:
                    if self._unsubscribed is not None:
                        self._unsubscribed.add(words[1])
            elif op == b"CONNECT":
                link.connected = True
            elif op == b"PING":
                link.pings.append(None)  # its PONG is the client's
            if op not in (b"PUB", b"HPUB"):
                out += frame
                continue
            with self._lock:
                prefix, held, release_on = self._prefix, self._held, self._release_on
                refusing = self._refusing
                dropped = prefix is not None and words[1].startswith(prefix)
                if dropped and out:  # counted once what came before it was sent: `dropped` growing says that
                    return bytes(out), (0.0, b""), b"".join(f for _, _, f in frames[i:]) + rest
                if dropped:
                    self.dropped += 1
                    if self._drops_left is not None:
                        self._drops_left -= 1
                        if self._drops_left <= 0:
                            self._prefix = None
                elif refusing is not None and words[1].startswith(refusing):
                    self.refused += 1
            if release_on is not None and words[1].startswith(release_on):
                self._released.set()
            if dropped:
                continue
            if refusing is not None and words[1].startswith(refusing):
                out += b" ".join([words[0], NOBODY, *words[2:]]) + frame[frame.find(b"\r\n"):]
            elif held is not None and words[1].startswith(held[0]):
                return bytes(out), (held[1], frame), b"".join(f for _, _, f in frames[i + 1:]) + rest
            else:
                out += frame
        return bytes(out), None, rest


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

