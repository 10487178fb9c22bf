"""The documented shapes of ``POST /ads/batch`` (OpenAPI only): its body, an item of it, its answer.

The route does not read its body through these models: :func:`gamead_core.api.routes_batch.validated` checks the
whole body in one pydantic-core call, or else each item is read on its own, so that one bad ad gets its own error
(:func:`gamead_core.api.routes_batch.parse_item`); the answer is written as bytes
(:mod:`gamead_core.api.batch_answer`).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from gamead_core.api.contract import ErrorBody
from gamead_core.ids import IDEMPOTENCY_KEY_PATTERN, MAX_IDEMPOTENCY_KEY
from gamead_core.models import AdAccepted, AdSubmission

__all__ = ["AdBatch", "AdBatchResult", "BatchAd"]


class BatchAd(AdSubmission):
    """One item of a batch: an ad (the body of ``POST /ads``), optionally with its own idempotency key."""

    model_config = ConfigDict(title="BatchAd")

    idempotency_key: str | None = Field(
        None, min_length=1, max_length=MAX_IDEMPOTENCY_KEY, pattern=IDEMPOTENCY_KEY_PATTERN,
        description="This ad's `Idempotency-Key` (scoped to the caller as on `POST /ads`; the header's rule: "
                    "printable ASCII, no comma, no space at either end; else this item's `invalid_idempotency_key`). "
                    "It wins over the key an `Idempotency-Key` header would give the item (`<header>-<index>`).")


class AdBatch(BaseModel):
    """The body of ``POST /ads/batch``. Documentation only: the route reads it all at once, or else item by item,
    so that one bad ad gets its own error and does not sink the others."""

    model_config = ConfigDict(title="AdBatch", extra="forbid")

    ads: list[BatchAd | Any] = Field(  # any item is taken: one that is not a valid BatchAd gets its own error
        min_length=1,
        description="1 … `api.batch_max` (default 500) ads, each as `POST /ads` takes it (`BatchAd`); an item "
        "that is not a valid ad is answered with its own `validation_failed` in the results.")


class AdBatchResult(BaseModel):
    """The answer: one result per ad, in the order sent."""

    model_config = ConfigDict(title="AdBatchResult")

    results: list[AdAccepted | ErrorBody] = Field(
        description="Per ad: what `POST /ads` answers with 202 (`id`, `status`…), or its error `{error: {…}}`.")
    accepted: int = Field(description="Ads on the queue: queued by this request, or `duplicate: true` (an earlier ad "
                          "of the same idempotency key; counted in `duplicates` too).")
    duplicates: int = Field(description="Ads answered `duplicate: true`: queued earlier, nothing queued now.")
    rejected: int = Field(description="Ads answered with an error.")
