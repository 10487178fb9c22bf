"""attack47 F2: ``--api`` at nats-server's HTTP monitoring port (the ``watched on http://127.0.0.1:P/healthz`` that
``gamead up`` prints) is no gamead API, and the CLI says so (exit 3), as it does for a worker's ``/metrics`` port.
Before, nats-server's own ``/healthz`` (``{"status":"ok"}``) passed for gamead's, so every command ended on the
route's 404: ``error: GET /ads: not found (HTTP 404)``, exit 4, the exit of an ad that does not exist."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from gamead_cli import exitcodes
from gamead_cli.main import app
from gamead_core.embedded import ANY_PORT, EmbeddedNats
from tests.cli.test_cli_live import unstyle

pytestmark = pytest.mark.usefixtures("isolated_env")


@pytest.fixture(scope="module")
def monitor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL of a real nats-server's HTTP monitoring (stopped at the end of the module)."""
    server = EmbeddedNats(tmp_path_factory.mktemp("nats"), monitor_port=ANY_PORT).start()
    yield f"http://127.0.0.1:{server.monitor_port}"
    server.stop()


@pytest.mark.parametrize("argv", [["ads", "list"], ["ads", "get", "01m87v538ce744cfgethvyb39n"], ["dlq", "list"],
                                  ["submit", "--title", "Sky Saga", "--genre", "RPG"]])
def test_a_nats_monitoring_port_is_not_a_gamead_api(runner: CliRunner, monitor: str, argv: list[str]) -> None:
    result = runner.invoke(app, [*argv, "--api", monitor])
    line = unstyle(result.stderr).strip()
    assert result.exit_code == exitcodes.UNREACHABLE, line
    assert line.startswith(f"error: no gamead API at {monitor}") and len(line.splitlines()) == 1, line
