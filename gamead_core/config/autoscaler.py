"""Settings of the worker autoscaler (mounted as ``GameadSettings.autoscaler``).

The numbers drive the pure :class:`gamead_core.scaling.policy.ScalingPolicy`; the ``kubernetes`` section
drives :class:`gamead_core.scaling.kubernetes.KubernetesScaler`. Env vars follow the usual nesting, e.g.
``GAMEAD_AUTOSCALER__MAX_REPLICAS=40`` or ``GAMEAD_AUTOSCALER__KUBERNETES__NAMESPACE=staging``.

Part of the ``gamead_core.config`` package (every settings class lives there), on its one ``Section`` base.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from gamead_core.config.section import DAY, HOUR, MINUTES_10, WEEK, PositiveSeconds, Seconds, Section
from gamead_core.scaling.bounds import MAX_OVERRIDE_REPLICAS  #: workers an autoscaler may run or add at once


class KubernetesScalerSettings(Section):
    namespace: str = Field("gamead", min_length=1, description="Namespace of the worker Deployment.")
    deployment: str = Field(
        "gamead-worker", min_length=1, description="Worker Deployment whose `scale` subresource is set."
    )
    kubeconfig: str | None = Field(
        None,
        description="kubeconfig file; unset = the pod's service account in a cluster, else $KUBECONFIG or "
        "~/.kube/config.",
    )
    context: str | None = Field(None, description="kubeconfig context; unset = the file's current-context.")
    request_timeout: PositiveSeconds = Field(
        5.0, le=MINUTES_10, description="Seconds one Kubernetes API call may take (connect + read). At most 10 "
        "minutes (600 s).")


class AutoscalerSettings(Section):
    backend: Literal["kubernetes", "local", "none"] = Field(
        "none", description="What sets the worker count: a Kubernetes Deployment, local processes, nothing."
    )
    interval: Seconds = Field(
        5.0, ge=0.2, le=HOUR, description="Seconds between two observations and decisions; at least 0.2 s (each round "
        "reads the queue and the registry and writes its state: less is a busy loop). At most 1 hour (3600 s).")
    min_replicas: int = Field(
        1, ge=0, le=MAX_OVERRIDE_REPLICAS, description="Fewest workers, whatever the load. At most 10,000.")
    max_replicas: int = Field(
        20, ge=1, le=MAX_OVERRIDE_REPLICAS, description="Most workers, whatever the load. At most 10,000.")
    target_drain_seconds: PositiveSeconds = Field(
        30.0, le=DAY, description="Size the pool to drain backlog plus in-flight ads within this many seconds. "
        "At most 1 day (86400 s).")
    max_wait_seconds: PositiveSeconds = Field(
        10.0, le=DAY, description="Longest the oldest urgent ad may wait; past it, urgent work drains in this. "
        "At most 1 day (86400 s).")
    urgent_max_level: int = Field(
        2, ge=1, le=5, description="Levels 1..this count as urgent for max_wait_seconds. At most 5."
    )
    scale_down_stabilization_seconds: Seconds = Field(
        300.0, ge=0, le=HOUR, description="Scale down only to the highest recommendation of this trailing window. At "
        "most 1 hour (3600 s, as Kubernetes' HPA).")
    scale_up_max_step: int = Field(
        4, ge=1, le=MAX_OVERRIDE_REPLICAS, description="Replicas one period may add (or scale_up_max_percent, if that is "
        "more). At most 10,000.")
    scale_up_max_percent: float = Field(
        100.0, ge=0, le=10_000, description="Percent of the replicas one period may add (or the step, if larger). At "
        "most 10,000.")
    scale_down_max_step: int = Field(
        1, ge=1, le=MAX_OVERRIDE_REPLICAS, description="Replicas one period may remove. At most 10,000.")
    period_seconds: PositiveSeconds = Field(
        15.0, le=HOUR, description="The period the step limits apply to. At most 1 hour (3600 s).")
    tolerance: float = Field(
        0.1, ge=0, lt=1, description="No change while |needed / current - 1| is within this fraction. At most just "
        "under 1.")
    stale_after_seconds: PositiveSeconds = Field(
        30.0, le=DAY, description="Metrics older than this are not acted upon: the replica count is held. At "
        "most 1 day (86400 s).")
    initial_per_worker_rate: float | None = Field(
        None, gt=0, le=1_000_000,
        description="Ads/s one worker is assumed to complete until a rate is measured (unset: hold until then,"
                    " except 0 → 1 replica when there is work). At most 1,000,000.",
    )
    max_age_seconds: PositiveSeconds | None = Field(
        None, le=WEEK, description="Longest the oldest pending ad of any level may wait; past it, that level "
        "and the more urgent ones must drain within this many seconds (unset: only the urgent rule applies). At most "
        "7 days (604800 s).")
    kubernetes: KubernetesScalerSettings = Field(
        default_factory=KubernetesScalerSettings, description="Where the kubernetes backend finds workers."
    )

    @model_validator(mode="after")
    def _metrics_outlive_a_round(self) -> AutoscalerSettings:
        # metrics are read once per interval and judged at the next decision (scaling.policy holds on metrics
        # older than stale_after_seconds): below one interval every reading would be stale and nothing scaled
        if self.stale_after_seconds < self.interval:
            raise ValueError(f"autoscaler.stale_after_seconds ({self.stale_after_seconds:g}s) must be at least "
                             f"autoscaler.interval ({self.interval:g}s): every reading would be too old to act on")
        return self

    @model_validator(mode="after")
    def _min_not_above_max(self) -> AutoscalerSettings:
        if self.min_replicas > self.max_replicas:
            raise ValueError(
                f"min_replicas ({self.min_replicas}) must not exceed max_replicas ({self.max_replicas})"
            )
        return self
