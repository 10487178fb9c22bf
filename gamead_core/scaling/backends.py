"""Which backend an autoscaler acts through (``kubernetes``, ``none``, or none at all for ``local``)."""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from gamead_core.config.autoscaler import AutoscalerSettings, KubernetesScalerSettings
from gamead_core.errors import ConfigError, GameadError, ScalerForbidden
from gamead_core.scaling.call_thread import CallThread
from gamead_core.scaling.kubeconfig import files_of, signature
from gamead_core.scaling.local import NoneScaler, Scaler

#: Set in every pod by the kubelet; its presence means "use the pod's service account".
IN_CLUSTER_ENV = "KUBERNETES_SERVICE_HOST"
#: seconds before a refused build of the backend is tried again (its files unchanged), doubling to RETRY_CAP
RETRY_BASE, RETRY_CAP = 5.0, 60.0
#: seconds a build is awaited (an exec credential plugin that never ends: the build goes on in its thread, and no
#: other starts before it ends: :class:`~gamead_core.scaling.call_thread.CallThread`)
BUILD_SECONDS = 60.0
_T = TypeVar("_T")


class LazyKubernetesScaler:
    """The ``kubernetes`` backend, built on first use and rebuilt until its credentials load.

    A missing kubeconfig or service account must not stop the API node: the error (a ``ConfigError``)
    surfaces on each call instead, and so in the recorded decisions. The build (importing the client, reading and
    loading the kubeconfig, running its ``exec`` credential plugin) runs in a thread (awaited :data:`BUILD_SECONDS` at
    most), never on the API's event loop (attack30b F4: a kubeconfig the client took 45-66 s to load and refuse froze
    ``/healthz`` and every ``POST /ads``; an ``exec`` plugin taking 8 s made ``/healthz`` take 5.8 s). A refused build is not tried again before
    its credentials' files change (:func:`gamead_core.scaling.kubeconfig.signature`) or a back-off passes
    (:data:`RETRY_BASE` s, doubling to :data:`RETRY_CAP`): each call until then raises the same error at once. A
    built scaler whose credentials the API server rejects (401) is dropped and built again the same way.
    """

    name = "kubernetes"

    def __init__(self, settings: KubernetesScalerSettings, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._settings = settings
        self._scaler: Any = None
        self._clock = clock
        #: the last refusal: (the files' signature then, when to try again (clock s), the error); its count in a row
        self._refused: tuple[Any, float, GameadError] | None = None
        self._refusals = 0
        self._builds = CallThread()  #: one build at a time, each awaited BUILD_SECONDS at most

    async def _get(self) -> Any:
        if self._scaler is not None:
            return self._scaler
        s = self._settings
        files = files_of(s.kubeconfig, os.environ, config_source(s, os.environ) == "in-cluster")
        seen = signature(files)
        if self._refused is not None and self._refused[0] == seen and self._clock() < self._refused[1]:
            raise self._refused[2]
        try:
            self._scaler = await self._builds.run("build the Kubernetes client (its kubeconfig, any exec plugin)",
                                                  lambda: _build(s), BUILD_SECONDS, sent=False)
        except ConfigError as exc:
            self._refuse(seen, exc)
            raise
        self._refused, self._refusals = None, 0
        return self._scaler

    def _refuse(self, seen: Any, exc: GameadError) -> None:
        """Not built (or built credentials rejected): the same ``exc`` at once until ``seen`` changes or a
        back-off passes."""
        self._refusals += 1
        self._refused = (seen, self._clock() + min(RETRY_CAP, RETRY_BASE * 2 ** (self._refusals - 1)), exc)

    async def _call(self, call: Callable[[Any], Awaitable[_T]]) -> _T:
        scaler = await self._get()
        try:
            return await call(scaler)
        except ScalerForbidden as exc:
            if exc.status == 401 and self._scaler is scaler:  # credentials rejected: built again, after a back-off
                # (review30 F14: an exec plugin that failed once at the build left a scaler without a token, kept
                # until a restart, every call 401; built again, the plugin runs again)
                self._scaler = None
                scaler.close()
                s = self._settings
                self._refuse(signature(files_of(s.kubeconfig, os.environ,
                                                config_source(s, os.environ) == "in-cluster")), exc)
            raise

    async def current_replicas_async(self) -> int:
        return await self._call(lambda scaler: scaler.current_replicas_async())

    async def set_replicas_async(self, n: int) -> None:
        await self._call(lambda scaler: scaler.set_replicas_async(n))

    async def mark_for_removal_async(self, marks: list[Any]) -> tuple[list[Any], str]:
        """Mark the pods a scale-down removes first (:meth:`~gamead_core.scaling.kubernetes.KubernetesScaler.
        mark_for_removal_async`)."""
        return await self._call(lambda scaler: scaler.mark_for_removal_async(marks))

    def close(self) -> None:
        if self._scaler is not None:
            self._scaler.close()


def _build(settings: KubernetesScalerSettings) -> Any:
    from gamead_core.scaling.kubernetes import (
        KubernetesScaler,  # the client: ~0.5 s of imports, once
    )

    return KubernetesScaler(settings)


def config_source(settings: KubernetesScalerSettings, environ: Mapping[str, str]) -> str:
    """``kubeconfig`` or ``in-cluster``: an explicit kubeconfig wins; else the pod's service account in a cluster;
    else ``$KUBECONFIG`` (the rule :class:`~gamead_core.scaling.kubernetes.KubernetesScaler` follows)."""
    if settings.kubeconfig:
        return "kubeconfig"
    return "in-cluster" if environ.get(IN_CLUSTER_ENV) else "kubeconfig"


def backend_for(settings: AutoscalerSettings) -> Scaler | None:
    """The backend an API node acts through: kubernetes, none (observe and advise), or None for ``local``
    (``gamead up`` owns the local workers and runs the autoscaler itself; API nodes only show its state)."""
    if settings.backend == "kubernetes":
        return LazyKubernetesScaler(settings.kubernetes)
    if settings.backend == "none":
        return NoneScaler()
    return None


__all__ = ["IN_CLUSTER_ENV", "LazyKubernetesScaler", "backend_for", "config_source"]
