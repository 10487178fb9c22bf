"""Each local worker's ``/metrics`` port under ``gamead up``: predictable, kept for the worker's restarts, and
claimed against other stacks (:mod:`gamead_core.port_claims`)."""

from __future__ import annotations

from collections.abc import Callable

from gamead_core.embedded import free_port
from gamead_core.port_claims import Holder, PortClaims
from gamead_core.proc import port_free
from gamead_core.scaling.local_ids import local_index


def url_host(host: str) -> str:
    """``host`` as a URL writes it: an IPv6 literal in brackets (``::1`` → ``[::1]``, RFC 3986 §3.2.2), else as
    is."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


class WorkerMetricsPorts:
    """Each local worker's ``/metrics`` port, predictable: worker ``local-<k>`` listens on ``base + k - 1``
    (``--metrics-port``; by default the API's port + 1, so 8081, 8082, … beside the API on 8080), kept for the
    worker's restarts. A port that is taken (or past 65535) falls back to a free one, and ``on_fallback`` gets
    one line saying which worker serves where instead; so does a kept port taken while its worker was down
    (another process, or an outgoing connection given it as its local port), found when the worker restarts:
    a worker started on it again would refuse to start for as long as it stays taken. With ``claims``, each port
    is claimed for the stack's life (:mod:`gamead_core.port_claims`), and one another stack claims counts as taken."""

    def __init__(self, host: str, base: int, *, enabled: bool = True,
                 on_fallback: Callable[[str], None] | None = None, claims: PortClaims | None = None) -> None:
        self.host = host
        self.base = base
        self.enabled = enabled
        self.on_fallback = on_fallback
        self.claims = claims
        self.ports: dict[str, int] = {}
        self._claimed: set[int] = set()  # ports claimed here (not the API's, nor nats-server's)

    @property
    def _reach_host(self) -> str:
        """Where this machine reaches a worker's ``/metrics``: 127.0.0.1 for a wildcard host."""
        return self.host if self.host not in ("0.0.0.0", "::") else "127.0.0.1"

    def planned(self, worker_id: str) -> int | None:
        """The port ``worker_id`` gets when it is free: ``base + k - 1`` for ``local-<k>`` (or ``local-<k>-<tag>``:
        :mod:`gamead_core.scaling.local_ids`); None for another id."""
        k = local_index(worker_id)
        return None if k is None or k < 1 else self.base + k - 1

    def port_for(self, worker_id: str) -> int:
        """The port for a (re)start of ``worker_id`` (call it only while no process of that id runs): the one it
        had if it is still free, else its planned one if free, else a free one (said through ``on_fallback``). Free
        where the worker binds, ``host`` itself: a wildcard's port held on any one address refuses the worker's bind
        (review54: judged on 127.0.0.1 alone, a kept port so held was kept again at every restart). Raises
        :class:`~gamead_core.listen.HostRefused` (a ConfigError and an OSError: the restart is said and tried again)
        for a host no listener can bind (:func:`~gamead_core.proc.port_free`)."""
        kept = self.ports.get(worker_id)
        if kept is not None and port_free(self.host, kept):
            return kept
        planned = self.planned(worker_id)
        purpose = f"its worker {worker_id}'s /metrics"
        other = None
        if kept is None and planned is not None and planned <= 65535:
            other = self._claim(planned, purpose)
            if other is None and port_free(self.host, planned):
                self.ports[worker_id] = planned
                return planned
        self._release(worker_id, kept, planned)  # taken by some other process: not kept for this worker
        if self.claims is not None:
            self.ports[worker_id] = self.claims.pick(self.host, purpose)
            self._claimed.add(self.ports[worker_id])
        else:
            self.ports[worker_id] = free_port(self.host)
        if self.on_fallback is not None:
            taken = (f"port {kept}, {worker_id}'s until it stopped, is taken now" if kept is not None else
                     f"port {planned} is reserved by {other.describe()}" if other is not None else
                     f"port {planned} is taken" if planned is not None and planned <= 65535 else
                     f"port {planned} is past 65535" if planned is not None else "it has no planned port")
            self.on_fallback(f"metrics: {taken}: {worker_id} serves http://{url_host(self.host)}:"
                             f"{self.ports[worker_id]}/metrics instead")
        return self.ports[worker_id]

    def _claim(self, port: int, purpose: str) -> Holder | None:
        """Claim ``port`` (see :meth:`PortClaims.claim`); None without claims."""
        if self.claims is None:
            return None
        mine = port in self.claims.held
        other = self.claims.claim(port, purpose)
        if other is None and not mine:
            self._claimed.add(port)
        return other

    def _release(self, worker_id: str, *ports: int | None) -> None:
        """Give back the ports claimed here among ``ports`` that no worker but ``worker_id`` keeps."""
        kept = {port for wid, port in self.ports.items() if wid != worker_id}
        for port in ports:
            if self.claims is not None and port in self._claimed and port not in kept:
                self._claimed.discard(port)
                self.claims.release(port)

    def args(self, worker_id: str) -> list[str]:
        if not self.enabled:
            return []
        return ["--metrics-port", str(self.port_for(worker_id))]

    def local_url(self, worker_id: str) -> str | None:
        """Where this machine reaches ``worker_id``'s ``/metrics`` (its liveness endpoint for ``gamead up``'s
        probe): ``http://<host>:<port>/metrics`` (127.0.0.1 for a wildcard host, an IPv6 one bracketed:
        ``http://[::1]:8081/metrics``); None when metrics are off or it has no port yet."""
        port = self.ports.get(worker_id)
        if not self.enabled or port is None:
            return None
        return f"http://{url_host(self._reach_host)}:{port}/metrics"

    def urls(self) -> str:
        return ", ".join(f"{wid} http://{url_host(self.host)}:{port}/metrics"
                         for wid, port in sorted(self.ports.items()))

    def rule(self, most: int) -> str:
        """How the ports are chosen, for the start-up line: ``local-k on port 8080+k (up to local-4)``."""
        offset = self.base - 1
        return f"local-k on port {offset}+k, up to local-{most}" if offset else f"local-k on port k, up to local-{most}"


__all__ = ["WorkerMetricsPorts", "url_host"]
