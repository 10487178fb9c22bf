"""The one JSON response helper of the API (orjson-encoded, ``application/json``)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None, *,
                  no_store: bool = False) -> Response:
    """``data`` as a JSON response with ``status``. ``no_store`` adds ``Cache-Control: no-store`` (live
    figures, job states: RFC 9111 §5.2.2.5), merged under any ``headers`` given."""
    if no_store:
        headers = {"Cache-Control": "no-store", **(headers or {})}
    return Response(orjson.dumps(data), status_code=status, media_type="application/json", headers=headers)
