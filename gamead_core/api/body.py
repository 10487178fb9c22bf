"""Reading JSON request bodies whatever Content-Type was sent (the spec's curl sends a form type)."""

from __future__ import annotations

from typing import Any, TypeVar

import orjson
from fastapi import Request
from pydantic import BaseModel, ValidationError

from gamead_core.api.errors import ApiError, validation_details, validation_message

M = TypeVar("M", bound=BaseModel)


def parse_body(body: bytes, model: type[M], max_bytes: int) -> M:
    """Decode and validate a JSON object body: 413 ``payload_too_large``, 400 ``invalid_json`` or 422
    ``validation_failed`` with field paths."""
    if len(body) > max_bytes:
        raise ApiError(413, "payload_too_large", f"the body is {len(body)} bytes; the limit is {max_bytes}")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, "invalid_json", f"the body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_json", "the body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        details = validation_details(list(exc.errors()))
        raise ApiError(422, "validation_failed", validation_message(details), details=details) from None


async def read_body(request: Request, model: type[M]) -> M:
    return parse_body(await request.body(), model, request.app.state.settings.api.max_body_bytes)


def body_schema(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` documenting a JSON body read with :func:`read_body`."""
    schema = model.model_json_schema(by_alias=True, ref_template="#/components/schemas/{model}")
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}
