"""attack47 F3: ``--api`` at a NATS client port (the ``nats://`` address ``gamead up`` prints first) said "the gamead
API at … got the request but gave no answer (connection closed without an answer …) — is the API overloaded or
stopped?", exit 3, and ``submit`` "the ad may be queued" (nothing there speaks HTTP). nats-server writes ``INFO {…}``
before any request; the CLI now names it: ``no gamead API at …: it answered "INFO {…" (a NATS server, not HTTP)``,
exit 3. A server that takes the request and closes without a word (a gamead API that crashed mid-request) is
still "gave no answer": never "no gamead API"."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from gamead_cli import exitcodes
from gamead_cli.main import app
from gamead_core.embedded import EmbeddedNats
from tests.cli.test_cli_live import unstyle
from tests.cutting_listener import cutting_listener

pytestmark = pytest.mark.usefixtures("isolated_env")


@pytest.fixture(scope="module")
def nats_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The client port of a real nats-server, as an http:// base URL (stopped at the end of the module)."""
    server = EmbeddedNats(tmp_path_factory.mktemp("nats")).start()
    yield "http://127.0.0.1:" + server.url.rsplit(":", 1)[1]
    server.stop()


@pytest.mark.parametrize("argv", [["ads", "list"], ["dlq", "list"], ["submit", "--title", "Sky Saga", "--genre", "RPG"]])
def test_a_nats_client_port_is_named_not_waited_for(runner: CliRunner, nats_port: str, argv: list[str]) -> None:
    result = runner.invoke(app, [*argv, "--api", nats_port])
    line = unstyle(result.stderr).strip()
    assert result.exit_code == exitcodes.UNREACHABLE, line
    assert line.startswith(f'error: no gamead API at {nats_port}: it answered "INFO {{"server_id":'), line
    assert "(a NATS server, not HTTP)" in line and len(line.splitlines()) == 1, line
    assert "may be queued" not in result.stdout + result.stderr and "overloaded" not in line, line


def test_a_server_that_closes_without_a_word_is_still_no_answer(runner: CliRunner) -> None:
    """What a gamead API that died mid-request looks like: the request taken, the connection closed, no byte."""
    with contextlib.contextmanager(cutting_listener)(1, reset=False) as url:  # one read, then a quiet close
        result = runner.invoke(app, ["ads", "list", "--api", url], env={"GAMEAD_CLIENT__RETRY_FOR": "0"})
    line = unstyle(result.stderr).strip()
    assert result.exit_code == exitcodes.UNREACHABLE, line
    assert line.startswith(f"error: the gamead API at {url} got the request but gave no answer"), line
    assert "no gamead API" not in line, line
