"""Reading JSON request bodies whatever Content-Type was sent (the spec's curl sends a form type)."""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError

from gamead_core.api.errors import (
    InvalidJson,
    PayloadTooLarge,
    ValidationFailed,
    validation_details,
    validation_message,
)

M = TypeVar("M", bound=BaseModel)


def parse_body(body: bytes, model: type[M], max_bytes: int) -> M:
    """Decode and validate a JSON object body: 413 ``payload_too_large``, 400 ``invalid_json`` or 422
    ``validation_failed`` with field paths.

    Validation is pydantic's **strict** mode on the JSON text (one parse): a JSON boolean is never an integer
    (``{"replicas": false}`` was read as 0), a string never a number or a boolean; times are ISO-8601 strings.
    """
    if len(body) > max_bytes:
        raise PayloadTooLarge(f"the body is {len(body)} bytes; the limit is {max_bytes}")
    try:
        return model.model_validate_json(body, strict=True)
    except ValidationError as exc:
        errors = list(exc.errors(include_url=False))
    first = errors[0] if errors else {}
    if first.get("type") == "json_invalid":
        reason = (first.get("ctx") or {}).get("error") or first.get("msg")
        raise InvalidJson(f"the body is not valid JSON: {reason}")
    if not first.get("loc") and first.get("type") in ("model_type", "model_attributes_type", "dict_type"):
        raise InvalidJson("the body must be a JSON object")
    details = validation_details(errors)
    raise ValidationFailed(validation_message(details), details=details)


async def read_body(request: Request, model: type[M]) -> M:
    return parse_body(await request.body(), model, request.app.state.settings.api.max_body_bytes)


def body_schema(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` documenting a JSON body read with :func:`read_body`."""
    schema = model.model_json_schema(by_alias=True, ref_template="#/components/schemas/{model}")
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}
