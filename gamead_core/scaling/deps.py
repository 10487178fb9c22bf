"""What an :class:`~gamead_core.scaling.loop.Autoscaler` works with, in one typed object."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from nats.aio.client import Client as NATS
from nats.js import JetStreamContext

from gamead_core.clock import now as server_now
from gamead_core.config import GameadSettings, RegistrySettings
from gamead_core.scaling.local import Scaler
from gamead_core.stats.sampler import QueueSampler


class Link(Protocol):
    """What the loop needs of a NATS link (:class:`gamead_core.api.state.QueueLink` fits)."""

    nc: NATS | None
    js: JetStreamContext | None
    ready: asyncio.Event


@dataclass(frozen=True, slots=True)
class AutoscalerDeps:
    """What one :class:`Autoscaler` works with.

    ``sampler`` is the process's one :class:`~gamead_core.stats.sampler.QueueSampler`: the autoscaler reads
    its latest sample. With ``own_sampler`` (nobody else runs it: ``gamead up``) the autoscaler runs its loop,
    every ``sampler.interval`` (1 s, as an API node's stats sampler) — not once per tick: the rates of a sampler
    sampled every 5 s were over 55 s and said so for ever (attack29a F4), and they are over the minute
    ``/v1/stats`` shows.
    ``backend`` None: never lead, only read the shared state. ``registry`` (settings) gives a sampler
    without a registry one once NATS is up. ``on_decision`` is called with each new kind of decision.
    ``stack``: the ``gamead up`` stack written into the lease (its data dir: :mod:`gamead_core.scaling.stacks`);
    ``on_follow`` is called with the lease a follower read each interval (None: no lease readable).
    """

    link: Link
    sampler: QueueSampler
    node_id: str
    backend: Scaler | None
    own_sampler: bool = False
    registry: RegistrySettings | None = None
    stream_replicas: int = 1
    request_timeout: float = 2.0
    on_decision: Callable[[dict[str, Any]], None] | None = None
    clock: Callable[[], float] = server_now  #: epoch s on nats-server's clock: leases, decisions (attack33a F5)
    monotonic: Callable[[], float] = time.monotonic
    stack: str | None = None
    on_follow: Callable[[Any], None] | None = None

    @classmethod
    def standalone(cls, settings: GameadSettings, link: Link, *, node_id: str, backend: Scaler | None,
                   on_decision: Callable[[dict[str, Any]], None] | None = None, stack: str | None = None,
                   on_follow: Callable[[Any], None] | None = None) -> AutoscalerDeps:
        """Deps for a process without a stats sampler (``gamead up``): a queue-only sampler of its own."""
        sampler = QueueSampler(link, settings, node_id=node_id, sections=False)
        return cls(link=link, sampler=sampler, node_id=node_id, backend=backend, own_sampler=True,
                   registry=settings.registry, stream_replicas=settings.queue.replicas,
                   request_timeout=settings.nats.request_timeout, on_decision=on_decision, stack=stack,
                   on_follow=on_follow)


def new_holder_id(role: str = "api") -> str:
    """``<role>-<host>-<pid>``: the id an API node also uses in the registry."""
    return f"{role}-{socket.gethostname()}-{os.getpid()}"


__all__ = ["AutoscalerDeps", "Link", "new_holder_id"]
