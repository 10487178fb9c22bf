"""Which backend an autoscaler acts through (``kubernetes``, ``none``, or none at all for ``local``)."""

from __future__ import annotations

from typing import Any

from gamead_core.config.autoscaler import AutoscalerSettings, KubernetesScalerSettings
from gamead_core.scaling.local import NoneScaler, Scaler


class LazyKubernetesScaler:
    """The ``kubernetes`` backend, built on first use and rebuilt until its credentials load.

    A missing kubeconfig or service account must not stop the API node: the error (a ``ConfigError``)
    surfaces on each call instead, and so in the recorded decisions.
    """

    name = "kubernetes"

    def __init__(self, settings: KubernetesScalerSettings) -> None:
        self._settings = settings
        self._scaler: Any = None

    def _get(self) -> Any:
        if self._scaler is None:
            from gamead_core.scaling.kubernetes import KubernetesScaler

            self._scaler = KubernetesScaler(self._settings)
        return self._scaler

    async def current_replicas_async(self) -> int:
        return await self._get().current_replicas_async()  # type: ignore[no-any-return]

    async def set_replicas_async(self, n: int) -> None:
        await self._get().set_replicas_async(n)

    def close(self) -> None:
        if self._scaler is not None:
            self._scaler.close()


def backend_for(settings: AutoscalerSettings) -> Scaler | None:
    """The backend an API node acts through: kubernetes, none (observe and advise), or None for ``local``
    (``gamead up`` owns the local workers and runs the autoscaler itself; API nodes only show its state)."""
    if settings.backend == "kubernetes":
        return LazyKubernetesScaler(settings.kubernetes)
    if settings.backend == "none":
        return NoneScaler()
    return None


__all__ = ["LazyKubernetesScaler", "backend_for"]
