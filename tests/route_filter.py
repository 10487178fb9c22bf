"""A proxy in front of one nats-server's route port that can cut one server off from one Raft group, and nothing else.

A cluster whose nodes advertise their :class:`RouteFilter`'s port (``cluster { advertise }``, see
:mod:`tests.cut_cluster`) has every route connection to a node go through that node's filter, whichever side
dialled. The filter reads both directions frame by frame (the route protocol: ``INFO``, ``CONNECT``, ``PING``,
``RS+`` … one line each, ``RMSG``/``HMSG`` a line whose last word is the payload's size, then the payload) and learns
each side's ``server_name`` from its ``INFO``. While :meth:`RouteFilter.cut` is in force, every message frame of a
connection with the cut node at one end whose line names the Raft group (``$NRG.AE.<group>`` appends and heartbeats,
``$NRG.V.<group>`` votes, ``$NRG.P.<group>`` proposals …) is swallowed: that node's replica of the stream stops
applying writes (and cannot call an election the others would hear), while its clients' publishes, requests, direct
gets, JetStream API requests and deliveries go on as before. Raft catches the replica up once :meth:`RouteFilter.heal`
lets the group's frames through again. With ``local_reads`` the ``RS+`` lines of ``$JS.API.DIRECT.GET.`` subjects are
swallowed, always: a server's clients' direct gets are answered by its own replica alone. The cluster must run
without route compression (``compression: off``).
Threads only; stopped by :meth:`RouteFilter.stop`.
"""

from __future__ import annotations

import json
import socket
import threading

from tests.blackhole import Relay, whole_frames

_PAYLOAD_OPS = (b"RMSG", b"HMSG", b"LMSG")
#: the subjects of the direct gets a stream's replicas answer (their queue group, nats-server's ``_sys_``)
DIRECT_GETS = b"$JS.API.DIRECT.GET."


class RouteFilter(Relay):
    """A proxy on ``127.0.0.1:<port>`` to a nats-server's route port ``target`` (``host``, ``port``)."""

    def __init__(self, target: tuple[str, int], *, local_reads: bool = False) -> None:
        super().__init__(target)
        #: keep each server from hearing of the others' direct-get subscriptions (their ``RS+`` lines), so a direct
        #: get is answered by the replica on the server its client is connected to, never by chance by another's
        self.local_reads = local_reads
        self._cut: tuple[str, bytes] | None = None  #: (server name, Raft group) of :meth:`cut`
        self.dropped = 0  #: frames swallowed so far
        self.names: set[str] = set()  #: server names seen at either end of a connection (routes that went through)

    def start(self) -> RouteFilter:
        threading.Thread(target=self._accept, daemon=True, name="route-filter-accept").start()
        return self

    def cut(self, server: str, group: str) -> None:
        """From now on swallow every message frame naming Raft group ``group`` on a route with ``server`` at one end."""
        with self._lock:
            self._cut = (server, group.encode())
        self._settle()  # a frame let through before is not still on its way out of the filter

    def heal(self) -> None:
        """Forward everything again, at once."""
        with self._lock:
            self._cut = None
        self._settle()

    def _relay(self, client: socket.socket, upstream: socket.socket) -> None:
        #: the server names of this connection's two ends (the dialler's, the target's), as their first INFOs say (a
        #: later INFO may speak of a third server: gossip)
        ends: list[str] = ["", ""]
        threading.Thread(target=self._pump, args=(client, upstream, ends, 0), daemon=True).start()
        threading.Thread(target=self._pump, args=(upstream, client, ends, 1), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, ends: list[str], side: int) -> None:
        buf = b""

        def each(data: bytes) -> bool:
            nonlocal buf
            kept, buf = self._kept(buf + data, ends, side)
            if kept:
                dst.sendall(kept)
            return True

        self._forward(src, each, self._pump_lock())  # a frame's decision and its send under one lock: _settle
        self._shut(src, dst)

    def _kept(self, buf: bytes, ends: list[str], side: int) -> tuple[bytes, bytes]:
        """The bytes of the whole frames at the head of ``buf`` (from end ``side`` of a connection whose ends are
        ``ends``) that go on, and the rest (an incomplete frame)."""
        out = bytearray()
        frames, rest = whole_frames(buf, _PAYLOAD_OPS)
        for op, words, frame in frames:
            if op == b"INFO" and not ends[side]:
                name = str(json.loads(frame[5:]).get("server_name") or "")
                with self._lock:
                    ends[side] = name
                    self.names.add(name)
            with self._lock:
                cut = self._cut
            if self.local_reads and op == b"RS+" and DIRECT_GETS in frame:
                pass  # the other end never learns this end answers direct gets
            elif cut is not None and op in _PAYLOAD_OPS and cut[0] in ends and cut[1] in frame[:frame.find(b"\r\n")]:
                with self._lock:
                    self.dropped += 1
            else:
                out += frame
        return bytes(out), rest
