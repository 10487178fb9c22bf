"""The anonymous request limit counts an IPv6 client per /64, as failed authentications are counted (attack41b F3).

A host is given a /64 (RFC 6177) and may send from any address in it (privacy addresses, IP_FREEBIND), so a limit
per address was no limit for an IPv6 client: each of its 2^64 addresses had a full bucket of its own. Real
``gamead serve`` with rate limits on; the clients come through a trusted proxy (this test's loopback connection,
``FORWARDED_ALLOW_IPS``' default) whose ``X-Forwarded-For`` names them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gamead_core.embedded import EmbeddedNats
from tests.support import Proc, start_api

BURST = 3  #: ratelimit.burst; its rate is so slow that no token comes back during the test


@pytest.fixture
def limited_api(nats_server: EmbeddedNats, tmp_path: Path) -> Iterator[str]:
    proc: Proc
    proc, url = start_api(nats_server.url, tmp_path, GAMEAD_RATELIMIT__ENABLED="true",
                          GAMEAD_RATELIMIT__RATE="0.001", GAMEAD_RATELIMIT__BURST=str(BURST))
    try:
        yield url
    finally:
        proc.stop()


def _status(url: str, client: str) -> int:
    answer = httpx.get(f"{url}/ads/01zzzzzzzzzzzzzzzzzzzzzzzz", headers={"X-Forwarded-For": client}, timeout=10)
    return answer.status_code


def test_the_addresses_of_one_ipv6_64_share_one_anonymous_bucket(limited_api: str) -> None:
    """Without the fix: the fourth and fifth addresses of the /64 are answered 404 (a bucket each), not 429."""
    subnet = [f"2001:db8:1:2::{n:x}" for n in range(1, BURST + 3)]
    assert [_status(limited_api, client) for client in subnet] == [404] * BURST + [429, 429]
    assert _status(limited_api, "2001:db8:1:3::1") == 404  # another /64: another client
    # IPv4 stays per address, an IPv4-mapped IPv6 address being the IPv4 one
    assert [_status(limited_api, "192.0.2.7") for _ in range(BURST)] == [404] * BURST
    assert [_status(limited_api, client) for client in ("::ffff:192.0.2.7", "192.0.2.8")] == [429, 404]
