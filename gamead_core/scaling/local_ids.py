"""The worker ids ``gamead up`` gives its worker children: ``local-<k>`` for child ``worker-<k>``, with its stack's
tag when the stack shares a NATS it did not start (``nats.url``): ``local-<k>-<tag>``.

Two ``gamead up`` on one ``nats.url`` both named their first worker ``local-1``: one registry key for two processes,
and every reaper read each one's beats as the other's death, charging its running ads ``WorkerLost`` (attack44 F3).
The tag (:func:`stack_tag`) is 6 hex characters of a hash of the host name and the stack's data directory: one
stack keeps its ids over its restarts (its worker's successor takes the id over: :mod:`gamead_core.registry.claim`),
two stacks never share one (one data directory holds one ``gamead up`` at a time). A stack with its own embedded
nats-server shares it with nobody it did not start: its ids stay ``local-<k>``. Pure."""

from __future__ import annotations

import hashlib
import re

_LOCAL_ID = re.compile(r"^local-(\d{1,6})(?:-[0-9a-f]{6})?$")


def stack_tag(host: str, data_dir: str) -> str:
    """6 hex characters naming one stack: ``host`` (its host name) and ``data_dir`` (its absolute data directory)."""
    return hashlib.sha256(f"{host}\n{data_dir}".encode()).hexdigest()[:6]


def worker_id_of(name: str, tag: str = "") -> str:
    """The worker id (``local-3``; ``local-3-<tag>`` given a stack ``tag``) of the local worker child ``name``
    (``worker-3``): the one rule for both."""
    k = name.rsplit("-", 1)[1]
    return f"local-{k}-{tag}" if tag else f"local-{k}"


def local_index(worker_id: str) -> int | None:
    """``k`` of a ``gamead up`` worker id (``local-<k>`` or ``local-<k>-<tag>``, :func:`worker_id_of`); None for
    another id."""
    m = _LOCAL_ID.match(worker_id)
    return int(m.group(1)) if m else None


__all__ = ["local_index", "stack_tag", "worker_id_of"]
