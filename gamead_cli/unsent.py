"""What the CLI's HTTP client learns from httpx's ``trace`` extension about one request's connection."""

from __future__ import annotations

from typing import Any


class Unsent:
    """An httpx ``trace`` extension noting whether writing a request's head or body failed (httpcore goes on to
    read an answer after a failed write, so the error raised is the read's: "disconnected without a response"),
    and handing each socket it connects to ``opened`` (:meth:`ApiClient.abort` shuts them down)."""

    failed = False

    def __init__(self, opened: Any = None) -> None:
        self._opened = opened

    def __call__(self, event: str, info: dict[str, Any]) -> None:
        if event.endswith((".send_request_headers.failed", ".send_request_body.failed")):
            self.failed = True
        elif event == "connection.connect_tcp.complete" and self._opened is not None and info.get("return_value"):
            self._opened(info["return_value"].get_extra_info("socket"))


__all__ = ["Unsent"]
