"""A three-node JetStream cluster whose every route goes through a :class:`~tests.route_filter.RouteFilter`, so a
test can stop one node's replica of one stream from applying writes while that node serves its clients as before:
a replica behind the leader, on demand rather than by chance (attack40b F1: 13 of 1,000 direct gets right after a
write returned the previous revision, by chance).

Each node advertises its filter's port as its route address (``cluster { advertise }``) and lists the filters' ports
as its routes, so a route dialled by either side, or learned by gossip, reaches a node through that node's filter;
routes run uncompressed (``compression: off``) for the filter to read them. Each server answers its own clients'
direct gets (``RouteFilter(local_reads=True)``: no server hears of another's direct-get subscriptions), so which
replica a client reads is known, not drawn at random (nats-server picks any member of the queue group, local or
routed, for a client's request: 29 of 60 reads from a lagging node's client were its own before). Nodes are started
and stopped by PID as in :mod:`tests.cluster`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import nats
import pytest

from tests.cluster import ClusterNode, NatsCluster
from tests.route_filter import RouteFilter
from tests.support import wait_for


@dataclass
class FilteredNode(ClusterNode):
    """A :class:`~tests.cluster.ClusterNode` reached by the other nodes through :attr:`filter` only."""

    filter: RouteFilter | None = field(default=None, repr=False)
    peers: list[RouteFilter] = field(default_factory=list, repr=False)  #: every node's filter: its routes

    def write_config(self, routes: list[int]) -> Path:
        """Its config (``routes`` ignored: the nodes' filters are its routes); its filter reaches its route port."""
        assert self.filter is not None
        self.filter.target = ("127.0.0.1", self.route_port)  # picked again when a start lost a port
        conf = super().write_config([f.port for f in self.peers])
        conf.write_text(conf.read_text().replace(
            "cluster {\n", f'cluster {{\n  advertise: "127.0.0.1:{self.filter.port}"\n  compression: off\n', 1))
        return conf


@dataclass
class CutCluster(NatsCluster):
    """Three routed JetStream nodes, every route through a :class:`RouteFilter` (:meth:`cut`, :meth:`heal`)."""

    filters: list[RouteFilter] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.nodes = [FilteredNode(n.name, n.port, n.route_port, n.data_dir, route_ping=n.route_ping)
                      for n in self.nodes]
        self.filters = [RouteFilter(("127.0.0.1", n.route_port), local_reads=True).start() for n in self.nodes]
        for node, filt in zip(self.nodes, self.filters):
            node.filter, node.peers = filt, self.filters  # type: ignore[attr-defined]

    def start(self, timeout: float = 30.0) -> CutCluster:
        """Start the nodes (:meth:`NatsCluster.start`, each routed to the filters) and wait until every node's
        routes to the two others went through the filters."""
        super().start(timeout)
        names = {n.name for n in self.nodes}
        wait_for(lambda: set().union(*(f.names for f in self.filters)) == names, timeout=timeout,
                 what="every node routed through the filters")
        return self

    def cut(self, node: str, group: str) -> None:
        """Stop ``node``'s replica in Raft group ``group`` from hearing or being heard by the group's others."""
        for filt in self.filters:
            filt.cut(node, group)

    def heal(self) -> None:
        for filt in self.filters:
            filt.heal()

    def dropped(self) -> int:
        """Frames the filters swallowed so far."""
        return sum(f.dropped for f in self.filters)

    def stop(self) -> None:
        super().stop()
        for filt in self.filters:
            filt.stop()


def raft_group(servers: list[str], stream: str) -> str:
    """The Raft group of ``stream`` (its ``STREAM.INFO``'s ``cluster.raft_group``), as its ``$NRG`` subjects name it."""

    async def run() -> str:
        nc = await nats.connect(servers)
        try:
            reply = await nc.request(f"$JS.API.STREAM.INFO.{stream}", b"", timeout=5)
            return str(json.loads(reply.data)["cluster"]["raft_group"])
        finally:
            await nc.close()

    return asyncio.run(run())


@pytest.fixture(scope="module")
def cut_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CutCluster]:
    """A :class:`CutCluster` for one module."""
    cluster = CutCluster(tmp_path_factory.mktemp("cut-cluster")).start()
    yield cluster
    cluster.stop()
