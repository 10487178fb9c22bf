"""The cause an outage line names for a connection that failed (probe48: an API killed while a connection was being
made printed ``[Errno 104] Connection reset by peer`` where every other cause is in plain words)."""

from __future__ import annotations

import httpx
import pytest

from gamead_cli.api_errors import connect_cause


@pytest.mark.parametrize(("raw", "cause"), [
    ("[Errno 111] Connection refused", "connection refused"),
    ("[Errno 104] Connection reset by peer", "connection reset"),
    ("[Errno -2] Name or service not known", "host name not found"),
    ("[Errno 101] Network is unreachable", "network unreachable"),
])
def test_a_failed_connection_is_named_in_plain_words(raw: str, cause: str) -> None:
    assert connect_cause(httpx.ConnectError(raw)) == cause
