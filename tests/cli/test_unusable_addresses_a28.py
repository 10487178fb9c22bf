"""attack28a F3 and F4 through the real ``gamead``: a setting no library or client could use is one ``error:`` line
naming it, exit 5, for every command that loads the settings, before anything starts.

F3: ``redis.url`` ``http://…`` or with a port that is no number passed ``config show`` (exit 0), then ``serve`` died
at start-up with redis-py's traceback (exit 3) and ``up`` said only "the API exited during start-up" (exit 1); a
NATS URL of the same kind had ``serve`` retry for ever. F4: ``auth.tokens`` took tokens no client can present
(non-ASCII: the viewer was locked out for good; a space: ``gamead`` refuses to send it). Secrets never show."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from gamead_cli import exitcodes
from tests.support import clean_env, run_gamead

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
SECRET = "s3cr3t-pw-28a"
TOKENS = ('[{"name": "ci", "token": "sekret99 x", "role": "operator"}, '
          '{"name": "viewer-u", "token": "t\u00f6k\u20acn-28a", "role": "viewer"}]')
#: tokens no client could use, refused at load (not only when the API started, after ``up`` had started NATS)
EMPTY_TOKEN = '[{"name": "x", "token": "", "role": "operator"}]'
SHARED_TOKEN = (f'[{{"name": "x", "token": "{SECRET}-tok", "role": "viewer"}}, '
                f'{{"name": "y", "token": "{SECRET}-tok", "role": "operator"}}]')


def _one_config_error(result: subprocess.CompletedProcess[str], *fragments: str) -> str:
    assert result.returncode == exitcodes.CONFIG == 5, (result.returncode, result.stdout, result.stderr)
    lines = _ANSI.sub("", result.stderr).strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: invalid configuration: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    everything = result.stdout + result.stderr
    assert "Traceback" not in everything and SECRET not in everything
    assert "sekret99" not in everything and "k\u20acn-28a" not in everything
    return lines[0]


@pytest.mark.parametrize(("variable", "value", "fragments"), [
    ("GAMEAD_REDIS__URL", f"http://u:{SECRET}@127.0.0.1/0",
     ("redis.url (GAMEAD_REDIS__URL=http://u:***@127.0.0.1/0)", "scheme must be redis://, rediss:// or unix://")),
    ("GAMEAD_REDIS__URL", f"redis://:{SECRET}@127.0.0.1:notaport/0",
     ("redis.url (GAMEAD_REDIS__URL=", "port is not a number from 1 to 65535")),
    ("GAMEAD_REDIS__URL", "redis://127.0.0.1:6379/cache", ("redis.url", "path must be a database number")),
    ("GAMEAD_REDIS__URL", "redis://127.0.0.1:6379/0?sockettimeout=1", ("redis.url", "no query parameter")),
    ("GAMEAD_REDIS__URL", "redis://127.0.0.1:6379/0?socket_timeout=9", ("redis.url", "redis.socket_timeout")),
    ("GAMEAD_NATS__URL", "http://127.0.0.1:4222", ("nats.url (GAMEAD_NATS__URL=", "nats://, tls://, ws:// or wss://")),
    ("GAMEAD_NATS__URL", f"nats://u:{SECRET}@h1:4222,nats://h2:notaport",
     ("nats.url", "server 2 of 2 (nats://h2:notaport)", "port is not a number")),
    ("GAMEAD_NATS__URL", "nats://h1:4222,ws://h2:8080", ("nats.url", "mixes websocket")),
    ("GAMEAD_API__HOST", "0.0.0.0:8080", ("api.host (GAMEAD_API__HOST=0.0.0.0:8080)", "without a scheme")),
    ("GAMEAD_WORKER__METRICS_HOST", "pod host", ("worker.metrics_host", "neither an IP address nor a host name")),
    ("GAMEAD_AUTH__TOKENS", TOKENS, ("auth.tokens.0.token (GAMEAD_AUTH__TOKENS)", "the token of 'ci' holds a space",
                                     "auth.tokens.1.token", "the token of 'viewer-u' holds 'ö' (U+00F6)")),
    ("GAMEAD_API__HOST", "256.1.1.1", ("api.host (GAMEAD_API__HOST=256.1.1.1)", "a name's last label is not a number")),
    ("GAMEAD_AUTH__TOKENS", EMPTY_TOKEN, ("auth.tokens.0.token (GAMEAD_AUTH__TOKENS)", "the token of 'x' is empty")),
    ("GAMEAD_AUTH__TOKENS", SHARED_TOKEN, ("auth.tokens (GAMEAD_AUTH__TOKENS)", "'x' and 'y' share the same token")),
])
def test_config_show_refuses_an_unusable_address_or_token_in_one_line_exit_5(
        tmp_path: Path, variable: str, value: str, fragments: tuple[str, ...]) -> None:
    _one_config_error(run_gamead("config", "show", env=clean_env(**{variable: value}), cwd=tmp_path, timeout=60),
                      *fragments)


@pytest.mark.parametrize(("variable", "value", "named"), [
    ("GAMEAD_REDIS__URL", f"http://u:{SECRET}@127.0.0.1/0", "redis.url"),
    ("GAMEAD_AUTH__TOKENS", TOKENS, "the token of 'viewer-u'"),
    ("GAMEAD_AUTH__TOKENS", SHARED_TOKEN, "'x' and 'y' share the same token"),
])
@pytest.mark.parametrize("argv", [
    ("serve", "--port", "0", "--nats-url", "nats://127.0.0.1:9"),
    ("worker", "--nats-url", "nats://127.0.0.1:9"),
    ("up", "--workers", "1", "--port", "0"),
])
def test_every_role_refuses_it_before_anything_starts(tmp_path: Path, argv: tuple[str, ...], variable: str,
                                                      value: str, named: str) -> None:
    """Before: ``serve`` exit 3 with a traceback in its log, ``up`` exit 1 "the API exited during start-up". No
    NATS is needed: the refusal comes first, and ``up`` leaves no stack directory behind."""
    extra = ("--data-dir", str(tmp_path / "d")) if argv[0] == "up" else ()
    result = run_gamead(*argv, *extra, env=clean_env(**{variable: value}), cwd=tmp_path, timeout=60)
    _one_config_error(result, named)
    assert not (tmp_path / "d").exists()


def test_a_bad_redis_url_in_the_config_file_names_its_line(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text(f'redis:\n  url: "redis://:{SECRET}@127.0.0.1:notaport/0"\n')
    _one_config_error(run_gamead("config", "show", env=clean_env(), cwd=tmp_path, timeout=60),
                      "redis.url (config file config.yaml, line 2)", "port is not a number")


def test_a_flag_s_nats_url_is_checked_too(tmp_path: Path) -> None:
    """``--nats-url`` with no host: before, ``serve`` retried "invalid hostname in connect url" for ever. A flag's
    value: bad usage, exit 2, naming the flag (leftout58: exit 5, ``nats.url (a command-line option)``)."""
    result = run_gamead("serve", "--port", "0", "--nats-url", f"nats://:{SECRET}@/", env=clean_env(), cwd=tmp_path,
                        timeout=60)
    assert result.returncode == exitcodes.USAGE, result.stderr
    lines = _ANSI.sub("", result.stderr).strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --nats-url: it names no host"), result.stderr
    assert SECRET not in result.stdout + result.stderr


@pytest.mark.parametrize("argv", [
    ("serve", "--port", "0", "--nats-url", "nats://127.0.0.1:9"),
    ("worker", "--nats-url", "nats://127.0.0.1:9"),
    ("up", "--workers", "1", "--port", "0"),
])
def test_an_otlp_endpoint_no_exporter_can_use_is_refused_before_anything_starts(
        tmp_path: Path, argv: tuple[str, ...]) -> None:
    """Before: the process started, then logged "Failed to export spans batch … not a valid host or port" at every
    batch of spans; ``up`` passed the variable to every child it started."""
    extra = ("--data-dir", str(tmp_path / "d")) if argv[0] == "up" else ()
    result = run_gamead(*argv, *extra, cwd=tmp_path, timeout=60, env=clean_env(
        OTEL_EXPORTER_OTLP_ENDPOINT=f"http://u:{SECRET}@127.0.0.1:notaport"))
    _one_config_error(result, "OTEL_EXPORTER_OTLP_ENDPOINT=http://u:***@127.0.0.1:notaport: its port is not a number")
    assert not (tmp_path / "d").exists()


@pytest.mark.parametrize("argv", [
    ("serve", "--port", "0", "--nats-url", "nats://127.0.0.1:9"),
    ("worker", "--nats-url", "nats://127.0.0.1:9"),
    ("up", "--workers", "1", "--port", "0"),
])
def test_an_exporter_gamead_does_not_build_is_refused_before_anything_starts(
        tmp_path: Path, argv: tuple[str, ...]) -> None:
    """review47: ``OTEL_TRACES_EXPORTER=zipkin`` started with tracing "on" and no exporter (``/readyz`` ``ok``,
    ``gamead up``: "spans … are ;"). Now one line naming what gamead supports, exit 5, as the SDK refuses it."""
    extra = ("--data-dir", str(tmp_path / "d")) if argv[0] == "up" else ()
    result = run_gamead(*argv, *extra, cwd=tmp_path, timeout=60, env=clean_env(OTEL_TRACES_EXPORTER="zipkin"))
    _one_config_error(result, "OTEL_TRACES_EXPORTER=zipkin: gamead has no 'zipkin' exporter; it supports otlp, "
                      "console (comma-separated), or none (tracing off)")
    assert not (tmp_path / "d").exists()
