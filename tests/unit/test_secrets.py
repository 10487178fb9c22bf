"""Issue 11.4, the whole kind: credentials in URLs are masked in every log line, every error message and the
configuration dump, whoever produced them. Pure (no servers)."""

from __future__ import annotations

import io
import json
import logging

import pytest

from gamead_core.config import GameadSettings, LogSettings, masked_dump
from gamead_core.errors import ConfigError, GameadError, QueueUnavailable
from gamead_core.logs import setup_logging
from gamead_core.redact import redact_text

SECRET = "PW-s3cret"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (f"connected to NATS at nats://gamead:{SECRET}@nats:4222", "connected to NATS at nats://gamead:***@nats:4222"),
        (f"token url nats://{SECRET}@nats:4222 down", "token url nats://***@nats:4222 down"),
        (f"redis://:{SECRET}@valkey:6379/0", "redis://:***@valkey:6379/0"),
        (f"nats://a:4222,nats://u:{SECRET}@b:4222", "nats://a:4222,nats://u:***@b:4222"),
        (f"nats://u:{SECRET}@with-at@host:4222/x", "nats://u:***@host:4222/x"),  # a raw @ in the password
        (f'{{"url": "redis://u:{SECRET}@h:1"}}', '{"url": "redis://u:***@h:1"}'),
        ("mail ops@example.com about nats://host:4222", "mail ops@example.com about nats://host:4222"),
        # attack40a F1: redis-py takes a password in the query too; `gamead config show` printed it
        (f"redis at rediss://h:6379/0?password={SECRET} down", "redis at rediss://h:6379/0?password=*** down"),
        (f"unix:///tmp/v.sock?username=u&password={SECRET}&ssl_password={SECRET}&db=2",
         "unix:///tmp/v.sock?username=u&password=***&ssl_password=***&db=2"),
    ],
)
def test_every_url_in_free_text_is_masked(text: str, shown: str) -> None:
    assert redact_text(text) == shown
    assert redact_text(shown) == shown  # idempotent


def test_gamead_errors_never_carry_a_password() -> None:
    for cls in (GameadError, QueueUnavailable, ConfigError):
        exc = cls(f"cannot connect to NATS at nats://gamead:{SECRET}@10.0.0.1:4222: refused")
        assert SECRET not in exc.message and SECRET not in str(exc)
        assert "nats://gamead:***@10.0.0.1:4222" in exc.message


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_no_log_line_carries_a_password(fmt: str) -> None:
    out = io.StringIO()
    setup_logging(LogSettings(format=fmt), role="api", stream=out)
    try:
        log = logging.getLogger("gamead.test")
        log.info("connected to NATS at %s", f"nats://u:{SECRET}@h:4222")
        log.warning("redis down", extra={"url": f"redis://:{SECRET}@v:6379"})
        try:
            raise OSError(f"refused: nats://u:{SECRET}@h:4222")
        except OSError:
            log.exception("unexpected")
    finally:
        logging.getLogger().handlers.clear()
    text = out.getvalue()
    assert SECRET not in text
    assert text.count("***@") >= 3
    if fmt == "json":
        assert all(json.loads(line) for line in text.splitlines() if line.startswith("{"))


def test_config_dump_masks_url_credentials_as_well_as_secrets() -> None:
    s = GameadSettings(nats={"url": f"nats://gamead:{SECRET}@n1:4222,nats://gamead:{SECRET}@n2:4222"},
                       redis={"url": f"rediss://:{SECRET}@valkey:6379/0?ssl_password={SECRET}"},
                       client={"api_url": "http://127.0.0.1:8080", "token": SECRET})
    dumped = masked_dump(s)
    assert SECRET not in json.dumps(dumped)
    assert dumped["nats"]["url"] == "nats://gamead:***@n1:4222,nats://gamead:***@n2:4222"
    assert dumped["redis"]["url"] == "rediss://:***@valkey:6379/0?ssl_password=***"
    assert dumped["client"] == {"api_url": "http://127.0.0.1:8080", "token": "********", "timeout": 10.0,
                                 "list_timeout": 120.0, "retry_for": 10.0, "lookup_for": 30.0,
                                 "max_answer_bytes": 64 * 1024 * 1024}


@pytest.mark.parametrize("url", [f"redis://:{SECRET[:3]},{SECRET[3:]}@valkey:6379/0",
                                 f"rediss://valkey:6379/0?p%61ssword={SECRET}",
                                 f"rediss://valkey:6379/0?password={SECRET[:3]},{SECRET[3:]}"])
def test_config_dump_masks_a_password_redis_py_reads_however_it_is_written(url: str) -> None:
    """review41 F3: ``gamead config show -o json`` printed ``redis://:S3,cretQ@valkey:6379/0`` and
    ``rediss://valkey:6379/0?p%61ssword=S3cretQ`` whole (redis-py connects with password S3,cretQ / S3cretQ): the
    comma was taken for a server list's, the percent-encoded name for no secret's. Without the fix: all 3 fail."""
    dumped = json.dumps(masked_dump(GameadSettings(redis={"url": url})))
    assert SECRET[3:] not in dumped and "***" in dumped


def test_the_dashboard_shows_the_api_url_without_its_password() -> None:
    from gamead_cli.client import ApiClient
    from gamead_cli.tui.source import ApiSource

    client = ApiClient(f"https://ops:{SECRET}@gamead.example.com")
    try:
        assert ApiSource(client).api_url == "https://ops:***@gamead.example.com"
    finally:
        client.close()
