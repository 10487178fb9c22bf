"""What the Kubernetes API server said, as one short line; and the content type of the merge PATCHes we send.

Shared by :mod:`gamead_core.scaling.kubernetes` (the Scale PATCH) and :mod:`gamead_core.scaling.pod_cost` (the
pods' ``pod-deletion-cost`` PATCH), which cannot import each other (kubernetes imports pod_cost).
"""

from __future__ import annotations

import json

from kubernetes.client.exceptions import ApiException

#: What ``kubectl scale`` and ``kubectl annotate`` send too: a JSON merge patch
MERGE_PATCH_CONTENT_TYPE = "application/merge-patch+json"


def server_message(exc: ApiException, limit: int = 300) -> str:
    """The ``message`` of a Kubernetes ``Status`` body, else the body or HTTP reason; one line of at most ``limit``."""
    body = exc.body
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if body:
        try:
            data = json.loads(body)
        except ValueError:
            return one_line(body, limit)
        if isinstance(data, dict) and data.get("message"):  # attack30b F1: 3 MB of it went whole into logs
            return one_line(data["message"], limit)
    return one_line(exc.reason or "no message", limit)


def one_line(value: object, limit: int = 300) -> str:
    """``value`` as one line (whitespace runs made one space), cut to ``limit`` characters with an ellipsis."""
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


__all__ = ["MERGE_PATCH_CONTENT_TYPE", "one_line", "server_message"]
