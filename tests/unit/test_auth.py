"""Tokens and roles, the open-or-required rule, the serve-safety rule, and NATS credentials pass-through."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from pathlib import Path

import pytest

from gamead_core.api import auth
from gamead_core.api.auth import (
    TokenTable,
    auth_required,
    bearer_token,
    check_serve_safety,
    is_loopback,
)
from gamead_core.api.middleware import route_class
from gamead_core.config import GameadSettings, load_settings
from gamead_core.errors import ConfigError
from gamead_core.queue.connection import connect_options

TOKENS = [
    {"name": "ci", "token": "s3cret-submit", "role": "submitter"},
    {"name": "ops", "token": "s3cret-operate", "role": "operator"},
    {"name": "bot", "token": "x" * 64, "role": "submitter"},
]


def settings(**sections: object) -> GameadSettings:
    return GameadSettings(**sections)


@pytest.fixture(autouse=True)
def _no_gamead_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("GAMEAD_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


# --- token lookup ---------------------------------------------------------------------------------------


def test_lookup_finds_the_principal_of_each_token_and_nothing_else() -> None:
    table = TokenTable(settings(auth={"tokens": TOKENS}).auth)
    assert table.lookup("s3cret-submit") == auth.Principal("ci", "submitter")
    assert table.lookup("s3cret-operate") == auth.Principal("ops", "operator")
    for wrong in ("", "s3cret", "s3cret-submit ", "S3CRET-SUBMIT", "s3cret-submit-and-more"):
        assert table.lookup(wrong) is None


def test_lookup_compares_against_every_token_whatever_matches(monkeypatch: pytest.MonkeyPatch) -> None:
    table = TokenTable(settings(auth={"tokens": TOKENS}).auth)
    calls: list[tuple[int, int]] = []
    real = auth.hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((len(a), len(b)))
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", spy)
    for presented in ("s3cret-submit", "x" * 64, "nope", "n" * 500):
        calls.clear()
        table.lookup(presented)
        assert len(calls) == len(TOKENS)  # no early exit on a match
        assert {pair for pair in calls} == {(32, 32)}  # fixed-length digests: lengths leak nothing


def test_env_tokens_are_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GAMEAD_AUTH__TOKENS", '[{"name":"a","token":"s3cret","role":"submitter"}]')
    monkeypatch.setenv("GAMEAD_AUTH__ENABLED", "true")
    s = load_settings()
    assert s.auth.enabled is True
    assert TokenTable(s.auth).lookup("s3cret") == auth.Principal("a", "submitter")


@pytest.mark.parametrize(
    ("header", "token"),
    [
        (b"Bearer abc", "abc"),
        (b"bearer   abc ", "abc"),
        ("BEARER abc", "abc"),
        (b"Basic YWJj", None),
        (b"Bearer", None),
        (b"abc", None),
        (None, None),
    ],
)
def test_bearer_token_parsing(header: bytes | str | None, token: str | None) -> None:
    assert bearer_token(header) == token


# --- roles and route classes ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "klass"),
    [
        ("/healthz", "open"), ("/readyz", "open"), ("/docs", "open"), ("/openapi.json", "open"), ("/redoc", "open"),
        ("/ads", "ads"), ("/ads/01J0ABC", "ads"), ("/ads/batch", "batch"),
        ("/v1/stats", "admin"), ("/v1/dlq/replay", "admin"), ("/v1", "admin"),
        ("/adsx", "other"), ("/v10/stats", "other"), ("/", "other"),
    ],
)
def test_route_classes(path: str, klass: str) -> None:
    assert route_class(path) == klass


def test_submitters_may_use_ads_only_and_operators_everything() -> None:
    sub, op = auth.Principal("ci", "submitter"), auth.Principal("ops", "operator")
    assert sub.may("ads") and not sub.may("admin")
    assert op.may("ads") and op.may("admin")
    assert not auth.ANONYMOUS.may("ads")


# --- open or required ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.1.2.3", True), ("::1", True), ("[::1]", True), ("localhost", True),
     ("0.0.0.0", False), ("::", False), ("10.0.0.5", False), ("api.example.com", False)],
)
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


@pytest.mark.parametrize(
    ("host", "enabled", "required"),
    [
        ("127.0.0.1", None, False),  # gamead up: open on loopback
        ("0.0.0.0", None, True),
        ("10.1.2.3", None, True),
        ("127.0.0.1", True, True),
        ("0.0.0.0", False, False),
    ],
)
def test_auth_required(host: str, enabled: bool | None, required: bool) -> None:
    assert auth_required(settings(api={"host": host}, auth={"enabled": enabled})) is required


# --- the serve-safety rule ------------------------------------------------------------------------------


def test_serve_refuses_a_network_address_without_tokens() -> None:
    with pytest.raises(ConfigError) as err:
        check_serve_safety(settings(api={"host": "0.0.0.0"}))
    message = err.value.message
    assert "0.0.0.0" in message and "auth.tokens" in message and "auth.enabled: false" in message


@pytest.mark.parametrize(
    "sections",
    [
        {"api": {"host": "127.0.0.1"}},  # loopback may run open
        {"api": {"host": "0.0.0.0"}, "auth": {"enabled": False}},  # open on purpose
        {"api": {"host": "0.0.0.0"}, "auth": {"tokens": TOKENS}},
        {"api": {"host": "127.0.0.1"}, "auth": {"enabled": True, "tokens": TOKENS}},
    ],
)
def test_serve_accepts_safe_configurations(sections: dict[str, object]) -> None:
    check_serve_safety(settings(**sections))


@pytest.mark.parametrize(
    ("sections", "mentions"),
    [
        ({"auth": {"enabled": True}}, "auth.tokens is empty"),
        ({"auth": {"tokens": [{"name": "a", "token": " ", "role": "submitter"}]}}, "'a' is empty"),
        ({"auth": {"tokens": [{"name": "a", "token": "t", "role": "submitter"},
                              {"name": "b", "token": "t", "role": "operator"}]}}, "same token"),
    ],
)
def test_serve_refuses_unusable_token_settings(sections: dict[str, object], mentions: str) -> None:
    with pytest.raises(ConfigError, match=mentions):
        check_serve_safety(settings(**sections))


# --- NATS credentials reach every connection ------------------------------------------------------------


def test_nats_user_password_and_token_reach_the_connect_options() -> None:
    s = settings(nats={"user": "gamead", "password": "pw", "token": "tok", "connect_timeout": 3.5})
    opts = connect_options(s.nats, "nats://a:4222, nats://b:4222", name="gamead-api")
    assert opts["servers"] == ["nats://a:4222", "nats://b:4222"]
    assert (opts["user"], opts["password"], opts["token"]) == ("gamead", "pw", "tok")
    assert opts["connect_timeout"] == 3.5 and opts["name"] == "gamead-api"
    assert "tls" not in opts


def test_no_credentials_means_none_are_sent() -> None:
    opts = connect_options(settings().nats, "nats://a:4222", name="w")
    assert not {"user", "password", "token", "tls"} & set(opts)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command to make a test cert")
def test_nats_tls_settings_build_a_verifying_context(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=gamead-test-ca"],
        check=True, capture_output=True, timeout=30,
    )
    s = settings(nats={"tls_ca": str(cert), "tls_cert": str(cert), "tls_key": str(key)})
    ctx = connect_options(s.nats, "tls://n:4222", name="w")["tls"]
    assert isinstance(ctx, ssl.SSLContext)
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    assert any(("commonName", "gamead-test-ca") in rdn for c in ctx.get_ca_certs() for rdn in c["subject"])
    with pytest.raises(ssl.SSLError):  # the key really is loaded: a mismatching one is refused
        other = tmp_path / "other.pem"
        subprocess.run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(other)],
                       check=True, capture_output=True, timeout=30)
        connect_options(settings(nats={"tls_cert": str(cert), "tls_key": str(other)}).nats, "tls://n", name="w")
