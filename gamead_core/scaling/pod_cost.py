"""Marks worker pods to be removed first by a scale-down: one merge PATCH of each pod's ``pod-deletion-cost``.

:class:`PodCosts` sends, per :class:`~gamead_core.scaling.removal.Mark` (quiet workers' pods first), what ``kubectl
annotate pod NAME controller.kubernetes.io/pod-deletion-cost=COST --overwrite`` sends: a JSON merge patch of
``metadata.annotations``. It never raises: it returns the marks that landed and, when it stopped early, why. A pod
that is gone (404) is skipped; a refusal (401, 403: the Role lacks ``patch`` on ``pods``) or a failure (5xx, a
timeout, no answer) stops it, since the next PATCH would fare the same; the scale-down goes on regardless (Kubernetes
then picks which pods go, as before). The RBAC it needs is in ``manifests/base/rbac.yaml``: ``patch`` on ``pods``
(core API group) in the workers' namespace, nothing else (it never reads a pod).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import urllib3
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from gamead_core.config.autoscaler import KubernetesScalerSettings
from gamead_core.scaling.capped_answers import AnswerTooLarge
from gamead_core.scaling.removal import DELETION_COST, Mark
from gamead_core.scaling.server_said import MERGE_PATCH_CONTENT_TYPE, one_line, server_message


def cost_patch(cost: int) -> dict[str, Any]:
    """The merge patch that sets a pod's deletion cost to ``cost`` (an annotation's value is a string). Pure."""
    return {"metadata": {"annotations": {DELETION_COST: str(cost)}}}


class PodCosts:
    """PATCHes the deletion cost of pods in the namespace of ``settings`` through ``api_client`` (the scaler's own:
    its credentials, its bounded answers)."""

    def __init__(self, api_client: k8s.ApiClient, settings: KubernetesScalerSettings) -> None:
        self._core = k8s.CoreV1Api(api_client)
        self._settings = settings

    def mark(self, marks: Sequence[Mark], done: list[Mark] | None = None) -> tuple[list[Mark], str]:
        """PATCH each of ``marks`` in order; ``(the marks that landed, why it stopped or "")``. ``done``: the
        caller's list, each mark appended as it lands (a caller that stops waiting still knows which did)."""
        done = [] if done is None else done
        for mark in marks:
            why = self._patch(mark)
            if why is None:
                done.append(mark)
            elif why:
                return done, why
        return done, ""

    def _patch(self, mark: Mark) -> str | None:
        """None: marked; "": the pod is gone (skipped); else why the PATCH failed."""
        s = self._settings
        where = f"pod {mark.pod} in namespace {s.namespace}"
        try:
            self._core.patch_namespaced_pod(mark.pod, s.namespace, cost_patch(mark.cost),
                                            _content_type=MERGE_PATCH_CONTENT_TYPE, _request_timeout=s.request_timeout)
            return None
        except ApiException as exc:
            status = int(exc.status or 0)
            if status == 404:
                return ""
            if status in (401, 403):
                return (f"forbidden to patch {where} (HTTP {status}): RBAC must grant verb 'patch' on resource "
                        f"'pods' in the core API group (manifests/base/rbac.yaml). Server: {server_message(exc, 200)}")
            return f"the Kubernetes API answered HTTP {status} to patch {where}: {server_message(exc, 200)}"
        except AnswerTooLarge as exc:
            return f"the Kubernetes API answered the patch of {where} with more than {exc.limit} bytes"
        except (urllib3.exceptions.HTTPError, OSError, ValueError) as exc:  # ValueError: an answer not a Pod
            return f"the Kubernetes API failed the patch of {where}: {one_line(exc, 200)}"


__all__ = ["PodCosts", "cost_patch"]
