"""Failed authentication on one node: its own budget (``ratelimit.failed_auth``), bounded memory and log lines
(attack28a F6, review28 A1-A5).

Against real ``gamead serve`` nodes (the answers a client gets, the log, Redis untouched):
``tests/integration/test_auth_failures.py``.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from gamead_core.api.auth import weak_tokens
from gamead_core.api.auth_failures import LOG_LINES, FailedAuth, FailureBuckets, client_key
from gamead_core.config import AuthSettings, RateLimitSettings, RateSettings
from tests.waits import until

GATE_LOGGER = "gamead_core.api.middleware"


def refused_401(failures: FailedAuth, address: str) -> None:
    failures.log_refusal(logging.INFO, address, "refused: 401 unauthenticated (invalid token) GET /ads", status=401)


def test_past_the_budget_a_failure_is_refused_until_a_token_is_back() -> None:
    now = [100.0]
    failures = FailedAuth(RateSettings(rate=1.0, burst=2), clock=lambda: now[0])
    taken = [failures.charge("10.0.0.9") for _ in range(3)]
    assert [d.allowed for d in taken if d] == [True, True, False]
    assert taken[2] is not None and taken[2].headers()[-1] == (b"retry-after", b"1")
    other = failures.charge("10.0.0.8")
    assert other is not None and other.allowed  # another address has its own budget
    now[0] += 1.0
    again = failures.charge("10.0.0.9")
    assert again is not None and again.allowed


def test_an_ipv6_client_is_counted_per_64() -> None:
    """Every cloud VM gets a /64: 3 addresses of one /64 share one budget (review28 A3); another /64 does not."""
    failures = FailedAuth(RateSettings(rate=0.001, burst=2))
    decisions = [failures.charge(a) for a in ("2001:db8:1:2::1", "2001:db8:1:2::beef", "2001:db8:1:2:ffff::1")]
    assert [d.allowed for d in decisions if d] == [True, True, False]
    elsewhere = failures.charge("2001:db8:1:3::1")
    assert elsewhere is not None and elsewhere.allowed
    assert client_key("2001:db8:1:2:aaaa:bbbb:cccc:dddd") == "2001:db8:1:2::/64"
    assert client_key("::ffff:10.1.2.3") == "10.1.2.3" and client_key("10.1.2.3") == "10.1.2.3"
    assert client_key("unknown") == "unknown"


def test_a_client_key_is_parsed_once_per_address_not_per_request(monkeypatch: pytest.MonkeyPatch) -> None:
    """The anonymous rate limit asks :func:`client_key` at every request (958f5211): 1,000 requests from one IPv6
    address parse it once (review41b F3: 17 µs a parse, of ~500 µs a POST); without the memo, 1,000 parses. Its
    answers are those of the rule (above), and the memo is bounded."""
    from gamead_core.api import auth_failures

    parses: list[str] = []
    real = auth_failures.normal_address
    monkeypatch.setattr(auth_failures, "normal_address", lambda text: parses.append(text) or real(text))
    keys = {client_key("2001:db8:41:b::7") for _ in range(1000)}
    assert keys == {"2001:db8:41:b::/64"} and len(parses) == 1
    assert client_key.cache_info().maxsize == auth_failures.CLIENT_KEYS


def test_failure_buckets_stay_bounded_whatever_the_number_of_addresses() -> None:
    buckets = FailureBuckets(RateSettings(rate=0.001, burst=1), max_clients=3)
    for n in range(10_000):
        buckets.take(f"10.{n >> 16}.{(n >> 8) & 255}.{n & 255}")
    assert len(buckets) == 3


def test_rate_limits_off_charge_nothing() -> None:
    assert FailedAuth(None).charge("10.0.0.9") is None


def test_the_failed_auth_budget_is_its_own_and_small_by_default() -> None:
    """review28 A4: not the anonymous request limit (200/s, burst 400)."""
    limits = RateLimitSettings()
    assert (limits.failed_auth.rate, limits.failed_auth.burst) == (1.0, 20)
    assert (limits.rate, limits.burst) == (200.0, 400)
    with pytest.raises(ValueError, match="failed_auth.burst"):
        RateLimitSettings(failed_auth={"rate": 1, "burst": 0})


def test_many_addresses_cannot_flood_the_log(caplog: pytest.LogCaptureFixture) -> None:
    """3,000 addresses, one wrong token each, within a second: at most LOG_LINES lines, then one summary line that
    counts the rest (review28 A3: the per-address throttle never repeats a key)."""
    now = [100.0]
    failures = FailedAuth(RateSettings(rate=1.0, burst=20), clock=lambda: now[0])
    caplog.set_level(logging.INFO, logger=GATE_LOGGER)
    for n in range(3000):
        now[0] += 0.0003
        refused_401(failures, f"10.9.{n >> 8}.{n & 255}")
    assert len(caplog.records) == LOG_LINES
    now[0] += 5.0
    refused_401(failures, "10.8.0.1")  # the next refusal from anyone says what was left out
    summary = caplog.records[-2]
    assert summary.message.startswith(f"refusals not logged: {3000 - LOG_LINES} in the last")
    assert summary.refusals_not_logged == summary.clients == 3000 - LOG_LINES  # type: ignore[attr-defined]
    assert caplog.records[-1].message.startswith("refused: 401")


def test_a_burst_that_stops_is_still_summarised(caplog: pytest.LogCaptureFixture) -> None:
    """review28 A5: the count of lines left out is said without another refusal from that address (or anyone)."""
    caplog.set_level(logging.INFO, logger=GATE_LOGGER)

    async def burst_then_silence() -> list[logging.LogRecord]:
        failures = FailedAuth(RateSettings(rate=1.0, burst=20), every=0.2)
        for _ in range(30):
            refused_401(failures, "10.0.0.7")
        return await until(lambda: [r for r in caplog.records if r.message.startswith("refusals not logged")],
                           timeout=10, what="a summary line of the refusals left out")

    said = asyncio.run(burst_then_silence())
    assert said[0].refusals_not_logged == 29 and said[0].top_client == "10.0.0.7"  # type: ignore[attr-defined]
    assert "the most from 10.0.0.7 (29)" in said[0].message


def test_short_or_repetitive_tokens_are_named_never_shown() -> None:
    auth = AuthSettings(tokens=[
        {"name": "ok", "token": "3f9c1e7a5b2d4c6e8f0a1b2c3d4e5f60", "role": "operator"},
        {"name": "short", "token": "s3cret-ops", "role": "operator"},
        {"name": "samey", "token": "abababababababababababab", "role": "viewer"},
    ])
    assert weak_tokens(auth) == ["short", "samey"]
