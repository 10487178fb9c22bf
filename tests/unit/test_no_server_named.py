"""No status text names a server (brief text13, finding 2): :func:`gamead_core.redact.without_servers` and the
Redis breaker's reasons, from redis-py's own errors against a real closed port (the live frozen/killed Valkey is
tests/integration/test_terminal_text.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from gamead_core.redact import without_servers
from gamead_core.redis_link import _describe


@pytest.mark.parametrize(("text", "said"), [
    ("Timeout reading from 127.0.0.1:16413", "Timeout reading from a server"),
    ("Error 111 connecting to 127.0.0.1:16413. Connection refused.",
     "Error 111 connecting to a server. Connection refused."),
    ("Error -2 connecting to redis.prod.svc:6379. Name or service not known.",
     "Error -2 connecting to a server. Name or service not known."),
    ("connect to nats://u:secret@nats-1:4222 failed", "connect to a server failed"),
    ("[::1]:6379 refused", "a server refused"),
    ("at 2026-12-01T12:30:45.123Z for 12.5 s, version 2.10.3",
     "at 2026-12-01T12:30:45.123Z for 12.5 s, version 2.10.3"),
    ("nats: no servers available for connection", "nats: no servers available for connection"),
])
def test_without_servers_keeps_what_failed_and_drops_where(text: str, said: str) -> None:
    assert without_servers(text) == said
    assert without_servers(said) == said


def test_the_breaker_reason_of_a_refused_connection_names_no_server(closed_port: Callable[[], int]) -> None:
    port = closed_port()

    async def failure() -> BaseException:
        client = aioredis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=1)
        try:
            await client.ping()
        except (RedisError, OSError) as exc:
            return exc
        finally:
            await client.aclose()
        raise AssertionError("nothing listens there, yet the ping was answered")

    exc = asyncio.run(failure())
    assert str(port) in str(exc)  # redis-py's own text names it
    assert _describe(exc) == "cannot connect: connection refused"
