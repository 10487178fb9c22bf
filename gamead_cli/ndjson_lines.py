"""The newline-delimited JSON answers of the API (``GET /v1/jobs/ID`` followed as it changes), read a bounded line at
a time: :func:`ndjson_lines`, what :meth:`gamead_cli.client.ApiClient.stream_ndjson` yields."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from gamead_core.errors import ApiClientError

#: longest line of an NDJSON stream from the API (a job document is a few KiB)
MAX_STREAM_LINE_BYTES = 1024 * 1024


def ndjson_lines(chunks: Iterable[bytes], what: str) -> Iterator[dict[str, Any]]:
    """The JSON objects of a newline-delimited byte stream, holding at most one line of
    :data:`MAX_STREAM_LINE_BYTES`; raises :class:`ApiClientError` for a longer line or one that is not JSON."""
    from gamead_cli.inputs import NotJson, strict_loads

    def parse(line: bytes) -> dict[str, Any]:
        try:
            doc = strict_loads(line)
        except NotJson as exc:
            raise ApiClientError(f"the API answered {what} with a line that is not JSON ({exc})") from None
        if not isinstance(doc, dict):
            raise ApiClientError(f"the API answered {what} with a line that is not a JSON object")
        return doc

    buf = b""
    for chunk in chunks:
        buf += chunk
        *lines, buf = buf.split(b"\n")
        for line in lines:
            if line.strip():
                yield parse(line)
        if len(buf) > MAX_STREAM_LINE_BYTES:
            raise ApiClientError(f"the API answered {what} with a line longer than "
                                 f"{MAX_STREAM_LINE_BYTES // 1024} KiB: is --api a gamead API?")
    if buf.strip():
        yield parse(buf)

