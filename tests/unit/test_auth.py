"""Tokens and roles, the grant table, the open-or-required rule, the serve-safety rule, and NATS credentials
pass-through."""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
from pathlib import Path

import pytest

from gamead_core.api import auth
from gamead_core.api.app import create_app
from gamead_core.api.auth import (
    GRANTS,
    TokenTable,
    allowed_roles,
    auth_mode,
    auth_required,
    bearer_token,
    check_serve_safety,
    is_loopback,
    route_class,
)
from gamead_core.config import ROLES, GameadSettings, load_settings
from gamead_core.errors import ConfigError
from gamead_core.queue.connection import connect_options

from tests.support import drop_gamead_env

TOKENS = [
    {"name": "ci", "token": "s3cret-submit", "role": "submitter"},
    {"name": "ops", "token": "s3cret-operate", "role": "operator"},
    {"name": "bot", "token": "x" * 64, "role": "submitter"},
]


def settings(**sections: object) -> GameadSettings:
    return GameadSettings(**sections)


@pytest.fixture(autouse=True)
def _no_gamead_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    drop_gamead_env(monkeypatch, tmp_path)


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


# --- roles, route classes and the grant table ----------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "klass"),
    [
        ("/healthz", "open"), ("/readyz", "open"), ("/docs", "open"), ("/openapi.json", "open"), ("/redoc", "open"),
        ("/ads", "ads"), ("/ads/batch", "ads"), ("/ads:batch", "ads"),
        ("/ads/01J0ABC", "ad"), ("/ads/01J0ABC/cancel", "ad"), ("/ads:other", "ad"),
        ("/v1/stats", "v1"), ("/v1/dlq/replay", "v1"), ("/v1", "v1"), ("/v1/jobs/j1/cancel", "v1"),
        ("/v1/doctor", "doctor"), ("/v1/doctor/repair", "doctor"), ("/v1/doctorx", "v1"),
        ("/adsx", "other"), ("/v10/stats", "other"), ("/", "other"), ("/metrics", "other"),
    ],
)
def test_route_classes(path: str, klass: str) -> None:
    assert route_class(path) == klass


@pytest.mark.parametrize(
    ("method", "path", "roles"),
    [
        ("POST", "/ads", {"submitter", "operator"}),
        ("GET", "/ads", {"submitter", "viewer", "operator"}),
        ("GET", "/ads/x", {"submitter", "viewer", "operator"}),
        ("HEAD", "/ads/x", {"submitter", "viewer", "operator"}),
        ("GET", "/v1/stats", {"viewer", "operator"}),
        ("GET", "/v1/audit", {"viewer", "operator"}),  # routes to come are covered already
        ("GET", "/v1/levels/3/oldest", {"viewer", "operator"}),  # gamead top's drill-down
        ("GET", "/v1/jobs/j1", {"viewer", "operator"}),
        ("POST", "/v1/dlq/replay", {"operator"}),
        ("POST", "/v1/dlq/purge", {"operator"}),
        ("POST", "/v1/dlq/import", {"operator"}),
        ("POST", "/v1/scale/override", {"operator"}),
        ("DELETE", "/v1/scale/override", {"operator"}),
        ("POST", "/v1/jobs/j1/cancel", {"operator"}),
        ("POST", "/v1/doctor/repair", {"operator"}),
        ("GET", "/v1/doctor", {"operator"}),  # the report names ads and reads the whole store
        ("PURGE", "/v1/anything", {"operator"}),  # an unknown method is a write
        ("DELETE", "/ads/x", {"operator"}),
        ("POST", "/somewhere", {"operator"}),
        ("GET", "/somewhere", {"submitter", "viewer", "operator"}),
    ],
)
def test_who_may_call_what(method: str, path: str, roles: set[str]) -> None:
    klass = route_class(path)
    assert allowed_roles(method, klass) == roles
    for role in ROLES:
        assert auth.Principal("p", role).may(method, klass) is (role in roles)
    assert not auth.ANONYMOUS.may(method, klass)


def test_the_grant_table_has_a_rule_for_every_class_and_access_and_viewers_never_write() -> None:
    classes = ("ads", "ad", "doctor", "whoami", "v1", "other")
    assert set(GRANTS) == {(access, klass) for access in ("read", "write") for klass in classes}
    for (access, _), roles in GRANTS.items():
        assert "operator" in roles  # the operator may do everything
        if access == "write":
            assert "viewer" not in roles
    assert auth.ANONYMOUS.may("GET", "open") and auth.ANONYMOUS.may("POST", "open")


def test_every_mounted_route_is_covered_by_the_grant_table() -> None:
    """Present and future routes alike: whatever is mounted, GET /v1/* is for viewers and operators, a /v1
    write for operators only, and submitting (one ad or a batch) is the one write a submitter may make."""
    app = create_app(GameadSettings(), "nats://127.0.0.1:1")
    seen = 0
    for path, operations in app.openapi()["paths"].items():
        for method in (m.upper() for m in operations):
            seen += 1
            klass = route_class(path.replace("{", "").replace("}", ""))
            roles = allowed_roles(method, klass)
            if klass == "open":
                continue
            assert "operator" in roles, (method, path)
            if path.startswith("/v1/doctor"):
                assert roles == {"operator"}, (method, path)
            elif path == "/v1/whoami":  # every role may ask who it is (README)
                assert roles == {"submitter", "viewer", "operator"}, (method, path)
            elif path.startswith("/v1"):
                assert roles == ({"viewer", "operator"} if method in ("GET", "HEAD") else {"operator"}), (method, path)
            if "submitter" in roles and method not in ("GET", "HEAD"):
                assert (method, path) in {("POST", "/ads"), ("POST", "/ads/batch")}, (method, path)
    assert seen >= 15


def test_token_names_are_checked() -> None:
    for bad in ("", "anonymous", "Anonymous", "has space", "x" * 65, "-lead"):
        with pytest.raises(ConfigError):
            load_settings(auth={"tokens": [{"name": bad, "token": "t", "role": "viewer"}]})
    ok = load_settings(auth={"tokens": [{"name": "grafana.dash-1", "token": "t", "role": "viewer"}]})
    assert ok.auth.tokens[0].role == "viewer"


def test_a_caller_s_idempotency_scope_is_its_token_name_or_anonymous() -> None:
    assert auth.Principal("ci", "submitter").scope == "token:ci"
    assert auth.ANONYMOUS.scope == "anonymous"


# --- open or required ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.1.2.3", True), ("::1", True), ("[::1]", True), ("localhost", True),
     ("0.0.0.0", False), ("::", False), ("10.0.0.5", False), ("api.example.com", False)],
)
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


@pytest.mark.parametrize(
    ("host", "enabled", "tokens", "required", "mode"),
    [
        ("127.0.0.1", None, [], False, "open"),  # gamead up: open on loopback
        ("127.0.0.1", None, TOKENS, True, "required"),  # issue 11.1: configured tokens count on loopback too
        ("::1", None, TOKENS, True, "required"),
        ("0.0.0.0", None, [], True, "required"),  # (and check_serve_safety refuses to start)
        ("10.1.2.3", None, TOKENS, True, "required"),
        ("127.0.0.1", True, TOKENS, True, "required"),
        ("0.0.0.0", False, [], False, "disabled"),
        ("127.0.0.1", False, TOKENS, False, "disabled"),  # only auth.enabled: false turns tokens off
    ],
)
def test_auth_required_and_the_mode_logged(
    host: str, enabled: bool | None, tokens: list[dict[str, str]], required: bool, mode: str
) -> None:
    s = settings(api={"host": host}, auth={"enabled": enabled, "tokens": tokens})
    assert auth_required(s) is required
    logged = auth_mode(s)
    assert logged["auth_mode"] == mode
    assert logged["auth_tokens"] == {"submitter": 2 if tokens else 0, "viewer": 0, "operator": 1 if tokens else 0}
    assert not any(t["token"] in str(logged) for t in TOKENS)  # never a token


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
    ],
)
def test_serve_refuses_unusable_token_settings(sections: dict[str, object], mentions: str) -> None:
    with pytest.raises(ConfigError, match=mentions):
        check_serve_safety(settings(**sections))


@pytest.mark.parametrize(
    ("tokens", "mentions"),
    [
        ([{"name": "a", "token": "", "role": "submitter"}], "the token of 'a' is empty"),
        ([{"name": "a", "token": " ", "role": "submitter"}], "the token of 'a' is empty"),
        ([{"name": "a", "token": "t", "role": "submitter"}, {"name": "b", "token": "t", "role": "operator"}],
         "'a' and 'b' share the same token"),
        ([{"name": "a", "token": "t1", "role": "submitter"}, {"name": "a", "token": "t2", "role": "operator"}],
         "'a' is used twice"),
    ],
)
def test_unusable_tokens_are_refused_when_the_settings_load(tokens: list[dict[str, str]], mentions: str) -> None:
    """Refused by the settings model (so by ``gamead config show``, exit 5), not only when the API starts: an API
    that is off (``auth.enabled: false``) refuses them too, as ``check_serve_safety`` did (attack28c F4)."""
    with pytest.raises(ValueError, match=mentions):
        settings(auth={"tokens": tokens})
    with pytest.raises(ValueError, match=mentions):
        settings(auth={"enabled": False, "tokens": tokens})


# --- NATS credentials reach every connection ------------------------------------------------------------


def test_nats_user_password_or_token_reach_the_connect_options() -> None:
    s = settings(nats={"user": "gamead", "password": "pw", "connect_timeout": 3.5})
    opts = connect_options(s.nats, "nats://a:4222, nats://b:4222", name="gamead-api")
    assert opts["servers"] == ["nats://a:4222", "nats://b:4222"]
    assert (opts["user"], opts["password"]) == ("gamead", "pw") and "token" not in opts
    assert opts["connect_timeout"] == 3.5 and opts["name"] == "gamead-api"
    assert "tls" not in opts
    assert connect_options(settings(nats={"token": "tok"}).nats, "nats://a:4222", name="w")["token"] == "tok"
    with pytest.raises(ValueError, match="nats.token is set together with nats.user/nats.password"):
        settings(nats={"user": "gamead", "password": "pw", "token": "tok"})  # nats-py would leave the token out


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
    with pytest.raises(ConfigError, match="nats.tls_key"):  # the key really is loaded: a mismatching one is refused
        other = tmp_path / "other.pem"
        subprocess.run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(other)],
                       check=True, capture_output=True, timeout=30)
        connect_options(settings(nats={"tls_cert": str(cert), "tls_key": str(other)}).nats, "tls://n", name="w")


@pytest.mark.parametrize("kind", ["fifo", "dev_zero", "directory", "no_certificate"])
def test_nats_tls_files_that_would_block_or_never_end_are_refused_by_name(tmp_path: Path, kind: str) -> None:
    if kind == "fifo":
        path = tmp_path / "ca.pem"
        os.mkfifo(path)  # ssl would wait for a writer for ever
    elif kind == "dev_zero":
        path = Path("/dev/zero")
    elif kind == "directory":
        path = tmp_path
    else:
        path = tmp_path / "empty.pem"
        path.write_text("not a certificate\n")  # was an "unexpected SSLError", exit 1
    with pytest.raises(ConfigError, match="nats.tls_ca"):
        connect_options(settings(nats={"tls_ca": str(path)}).nats, "tls://n:4222", name="w")


def test_a_tls_key_without_its_certificate_is_refused_not_ignored() -> None:
    with pytest.raises(ValueError, match="nats.tls_key is set without nats.tls_cert"):
        settings(nats={"tls_key": "/etc/client.key"})
