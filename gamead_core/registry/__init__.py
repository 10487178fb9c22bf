"""The service registry: every API node and worker heartbeats its state into a KV bucket with a TTL.

A node puts a :class:`NodeInfo` every ``registry.heartbeat_interval`` seconds under its own key; the bucket's
``max_age`` (``registry.ttl``) removes the entry of a node that stops, so a crashed node disappears on its
own. A node that shuts down cleanly deletes its entry at once.

One job per module:

* :mod:`~gamead_core.registry.wire`: the wire types (:class:`NodeInfo`, :class:`Percentiles`, :class:`HeldAd`);
* :mod:`~gamead_core.registry.health`: pure health rules (:func:`is_stuck`, :func:`node_state`,
  :func:`percentiles`);
* :mod:`~gamead_core.registry.nodes`: node builders. A worker describes itself (:class:`WorkerSelf`, from
  ``Worker.describe()``), so the registry never imports the worker;
* :mod:`~gamead_core.registry.kv`: the bucket (:class:`Registry`); reading is cheap enough to do every
  second: :meth:`Registry.list` is one batched direct get (:mod:`~gamead_core.registry.direct`);
* :mod:`~gamead_core.registry.beat`: heartbeating (:func:`run_heartbeat`, :func:`heartbeating`), which takes
  a callable that returns the node's :class:`NodeInfo`;
* :mod:`~gamead_core.registry.stops`: the clean-stop notes (bucket ``gamead_stops``, a day) that tell a clean stop
  from a death once ``registry.ttl`` removed the entry's delete mark (:meth:`Registry.stopped`);
* :mod:`~gamead_core.registry.claim`: a start refused an id a live process of another incarnation holds
  (:func:`claim`, attack44 F1);
* :mod:`~gamead_core.registry.owner`: every write of a node's entry reads its key first; a process whose key holds
  another's entry (it was taken for dead while frozen) writes it no more and ends (attack44c F1).
"""

from gamead_core.registry.beat import heartbeating, run_heartbeat
from gamead_core.registry.claim import claim
from gamead_core.registry.health import is_stuck, node_state, percentiles
from gamead_core.registry.kv import Registry, bucket_config
from gamead_core.registry.nodes import (
    RECENT_WINDOW,
    VERSION,
    WorkerSelf,
    api_incarnation,
    api_node_info,
    deaths,
    incarnation,
    new_api_node_id,
    node_key,
    same_incarnation,
    server_started,
    worker_node_info,
)
from gamead_core.registry.wire import HeldAd, NodeInfo, Percentiles, Role, State

__all__ = [
    "RECENT_WINDOW",
    "VERSION",
    "HeldAd",
    "NodeInfo",
    "Percentiles",
    "Registry",
    "Role",
    "State",
    "WorkerSelf",
    "api_incarnation",
    "api_node_info",
    "bucket_config",
    "claim",
    "deaths",
    "heartbeating",
    "incarnation",
    "is_stuck",
    "new_api_node_id",
    "node_key",
    "same_incarnation",
    "server_started",
    "node_state",
    "percentiles",
    "run_heartbeat",
    "worker_node_info",
]
