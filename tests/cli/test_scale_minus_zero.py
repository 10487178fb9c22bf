"""attack46 F3: ``gamead scale set -0`` was refused ``the worker count must be 0 to 10,000, not -0`` (exit 2): a
count the sentence itself allows. ``-0`` is 0 wherever gamead reads a number (a setting, a duration): the override
holds 0 workers, as ``scale set 0`` does. Real nats-server and ``gamead serve``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gamead_cli.main import app
from gamead_core.embedded import EmbeddedNats
from tests.support import Proc, start_api

pytestmark = pytest.mark.usefixtures("isolated_env")


def test_minus_zero_holds_zero_workers(runner: CliRunner, fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc],
                                       tmp_path: Path) -> None:
    proc, url = start_api(fresh_nats().url, tmp_path, GAMEAD_AUTOSCALER__BACKEND="local",
                          GAMEAD_EMBEDDED__DATA_DIR=str(tmp_path / "b"))
    procs.append(proc)
    for argv in (["-0"], ["--for", "1m", "-00"], ["--", "-0"]):  # after `--`, the count last
        run = runner.invoke(app, ["scale", "set", "-o", "json", "--api", url, *argv])
        assert run.exit_code == 0, (argv, run.output)
        assert json.loads(run.stdout)["override"]["replicas"] == 0, (argv, run.stdout)
    refused = runner.invoke(app, ["scale", "set", "-01", "--api", url])  # a negative count still is not one
    assert refused.exit_code == 2 and "must be 0 to 10,000, not -1" in refused.output, refused.output  # range46


def test_an_option_given_no_value_is_said_so(runner: CliRunner) -> None:
    """review47 F7: attack46 F3's reading of the arguments put an empty value after an option given last
    (``scale set 3 --for``): 'cannot read duration '''. Click says what is missing again; nothing is sent."""
    run = runner.invoke(app, ["scale", "set", "3", "--api", "http://127.0.0.1:9", "--for"])
    assert run.exit_code == 2 and "Option '--for' requires an argument" in run.output, run.output
    assert "cannot read duration" not in run.output, run.output
