"""The TLS contexts of httpx clients: the tests' own share one per pytest process (``tests.shared_tls``), and
the CLI's API client reads a CA bundle only for an ``https://`` API or proxy, once per process
(``gamead_cli.deadline_http``). Session 39: each of them read certifi's bundle, ~25 ms of CPU a client, the
largest cost of the pytest processes (1,244 of 2,654 py-spy samples of the six xdist workers)."""

from __future__ import annotations

import ssl

import httpx
import pytest

from gamead_cli.client import ApiClient
from gamead_cli.deadline_http import verified_tls


def _context(client: httpx.Client) -> ssl.SSLContext:
    return client._transport._pool._ssl_context  # type: ignore[attr-defined]


def _cas(context: ssl.SSLContext) -> int:
    return context.cert_store_stats()["x509_ca"]


def test_the_tests_own_clients_share_one_verified_context() -> None:
    """Figure: without the plugin (``-p no:tests.shared_tls``) two clients had two contexts."""
    with httpx.Client() as one, httpx.Client() as two:
        assert _context(one) is _context(two)
        assert _context(one).verify_mode == ssl.CERT_REQUIRED and _cas(_context(one)) > 0


def test_a_client_that_asks_for_other_tls_gets_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    with httpx.Client() as shared, httpx.Client(verify=False) as unverified:
        assert _context(unverified) is not _context(shared)
        assert _context(unverified).verify_mode == ssl.CERT_NONE
    import certifi

    monkeypatch.setenv("SSL_CERT_FILE", certifi.where())  # httpx reads it: another context, made for it
    with httpx.Client() as other, httpx.Client() as again:
        assert _context(other) is not _context(shared) and _context(other) is _context(again)


def _api_context(client: ApiClient) -> ssl.SSLContext:
    return client._http._transport._pool._ssl_context  # type: ignore[attr-defined]


def test_an_http_api_client_reads_no_ca_bundle_and_would_trust_no_certificate(monkeypatch: pytest.MonkeyPatch) -> None:
    """Figure: before, ``ApiClient("http://127.0.0.1:1")`` read certifi's bundle (its context held 140+ CAs)."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    with ApiClient("http://127.0.0.1:1") as client:
        context = _api_context(client)
    assert _cas(context) == 0 and context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


@pytest.mark.parametrize(("api", "proxy"), [("https://api.example:8443", None),
                                            ("http://api.example:8080", "https://proxy.example:3128")])
def test_an_https_api_or_proxy_is_verified_with_one_context_per_process(
        monkeypatch: pytest.MonkeyPatch, api: str, proxy: str | None) -> None:
    """Figure: before, every ``ApiClient`` made a context of its own (two clients, two bundles read)."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy", "NO_PROXY",
                 "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    if proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy)
    with ApiClient(api) as one, ApiClient(api) as two:
        assert _api_context(one) is _api_context(two) is verified_tls()
    assert _cas(verified_tls()) > 0 and verified_tls().verify_mode == ssl.CERT_REQUIRED
