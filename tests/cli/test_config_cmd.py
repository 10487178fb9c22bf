"""``gamead config show`` / ``config path``: layering, masking, formats."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from gamead_cli import exitcodes
from gamead_cli.main import app

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def unstyle(text: str) -> str:
    return _ANSI.sub("", text)


pytestmark = pytest.mark.usefixtures("isolated_env")


def show(runner: CliRunner, *args: str, env: dict[str, str] | None = None) -> dict:
    result = runner.invoke(app, ["config", "show", "-o", "json", *args], env=env)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_show_masks_secrets_and_reflects_env(runner: CliRunner) -> None:
    env = {"GAMEAD_NATS__PASSWORD": "hunter2-secret", "GAMEAD_WORKER__CONCURRENCY": "1"}
    result = runner.invoke(app, ["config", "show"], env=env)
    assert result.exit_code == 0, result.output
    assert "hunter2-secret" not in result.output
    data = yaml.safe_load(result.stdout)
    assert data["nats"]["password"] == "********"
    assert data["worker"]["concurrency"] == 1


def test_show_json_is_valid_json(runner: CliRunner) -> None:
    data = show(runner, env={"GAMEAD_TOKEN": "tok-123"})
    assert data["worker"]["concurrency"] == 4
    assert data["client"]["api_url"] == "http://127.0.0.1:8080"
    assert data["client"]["token"] == "********"
    assert set(data) >= {"api", "nats", "queue", "worker", "client"}


def test_show_yaml_and_json_agree(runner: CliRunner, tmp_path: Path) -> None:
    """The YAML says each setting in seconds as a duration (units46), which reads back as the number ``-o json``
    gives: the YAML shown, given as the config file, shows the same JSON."""
    env = {"GAMEAD_REDIS__SOCKET_TIMEOUT": "0.3", "GAMEAD_API__NATS_UNHEALTHY_AFTER": "3725",
           "GAMEAD_DLQ__MAX_AGE": "90061.25", "GAMEAD_WORKER__DRAIN_TIMEOUT": "90.5", "GAMEAD_WORKER__LINGER_MS": "0.5"}
    result = runner.invoke(app, ["config", "show"], env=env)
    shown = yaml.safe_load(result.stdout)
    json_data = show(runner, env=env)
    assert shown.keys() == json_data.keys() and shown["worker"]["concurrency"] == json_data["worker"]["concurrency"]
    (tmp_path / "shown.yaml").write_text(result.stdout, encoding="utf-8")
    assert _floats(show(runner, "--config", str(tmp_path / "shown.yaml"))) == _floats(json_data)


def _floats(tree: object) -> object:
    """``tree`` with every int a float (a default of ``14 * DAY`` is an int, the same read back a float)."""
    if isinstance(tree, dict):
        return {k: _floats(v) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_floats(v) for v in tree]
    return float(tree) if isinstance(tree, int) and not isinstance(tree, bool) else tree


def test_show_says_durations_with_their_unit_and_json_keeps_numbers(runner: CliRunner) -> None:
    """units46: ``config show`` printed ``ack_wait: 30.0``, ``ttl: 300.0``, ``max_age: 1209600``: seconds said
    nowhere. Each setting in seconds now reads as a duration, as a config file may give it (``30s``, ``5m00s``,
    ``14d``, ``250ms``; exact: ``12.5s``); counts, ports and sizes named in bytes stay numbers; ``-o json`` keeps
    numbers. Without the fix: ``30.0 != '30s'``."""
    env = {"GAMEAD_WORKER__DRAIN_TIMEOUT": "12.5"}
    data = yaml.safe_load(runner.invoke(app, ["config", "show"], env=env).stdout)
    assert (data["queue"]["ack_wait"], data["cache"]["ttl"], data["dlq"]["max_age"]) == ("30s", "5m00s", "14d")
    assert (data["redis"]["socket_timeout"], data["worker"]["drain_timeout"]) == ("250ms", "12.5s")
    assert (data["autoscaler"]["target_drain_seconds"], data["nats"]["give_up_after"]) == ("30s", "0.0s")
    assert data["autoscaler"]["max_age_seconds"] is None  # unset stays unset
    # polish47: a duration not round was bare seconds (3725.0s, 90061.0s) and one in ms by its name 2.0
    odd = {"GAMEAD_API__NATS_UNHEALTHY_AFTER": "3725", "GAMEAD_DLQ__MAX_AGE": "90061"}
    text = runner.invoke(app, ["config", "show"], env=odd).stdout
    other = yaml.safe_load(text)
    assert (other["api"]["nats_unhealthy_after"], other["dlq"]["max_age"]) == ("1h02m05s", "1d1h01m01s")
    assert {"  write_linger_ms: 2", "  linger_ms: 5", "  head_cache_ms: 200"} <= set(text.splitlines())
    assert (data["worker"]["concurrency"], data["api"]["max_body_bytes"], data["api"]["port"]) == (4, 65536, 8080)
    numbers = show(runner, env=env)
    assert (numbers["queue"]["ack_wait"], numbers["worker"]["drain_timeout"], numbers["dlq"]["max_age"]) == \
        (30.0, 12.5, 1209600)


def test_config_file_values_appear_and_env_beats_file(runner: CliRunner, tmp_path: Path) -> None:
    cfg = tmp_path / "custom.yaml"
    cfg.write_text(
        "worker:\n  concurrency: 7\n  drain_timeout: 3\napi:\n  port: 9999\nnats:\n  password: from-file\n",
        encoding="utf-8",
    )
    data = show(runner, "--config", str(cfg))
    assert data["worker"]["concurrency"] == 7
    assert data["api"]["port"] == 9999
    assert data["nats"]["password"] == "********"

    data = show(runner, "--config", str(cfg), env={"GAMEAD_WORKER__CONCURRENCY": "2"})
    assert data["worker"]["concurrency"] == 2  # env wins
    assert data["worker"]["drain_timeout"] == 3  # the rest of the file still applies
    assert data["api"]["port"] == 9999


def test_config_file_from_env_var(runner: CliRunner, tmp_path: Path) -> None:
    cfg = tmp_path / "env.yaml"
    cfg.write_text("worker:\n  concurrency: 5\n", encoding="utf-8")
    assert show(runner, env={"GAMEAD_CONFIG": str(cfg)})["worker"]["concurrency"] == 5


def test_invalid_config_is_one_red_line_exit_5(runner: CliRunner, tmp_path: Path) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("worker:\n  concurrency: 0\n", encoding="utf-8")
    result = runner.invoke(app, ["config", "show", "--config", str(cfg)])
    assert result.exit_code == exitcodes.CONFIG
    lines = unstyle(result.stderr).strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert "worker.concurrency" in lines[0]


def _one_red_line(runner: CliRunner, args: list[str], env: dict[str, str] | None = None) -> str:
    result = runner.invoke(app, args, env=env)
    assert result.exit_code == exitcodes.CONFIG, result.output
    lines = unstyle(result.stderr).strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: invalid configuration: "), lines
    return lines[0]


@pytest.mark.parametrize("command", [["config", "show"], ["scale", "status"]], ids=["config-show", "scale-status"])
def test_a_bad_value_names_the_variable_or_the_file_line_it_came_from(runner: CliRunner, tmp_path: Path,
                                                                      command: list[str]) -> None:
    """A newcomer with ``GAMEAD_QUEUE__PARTITIONS=abc`` (and a config file) read only ``queue.partitions``:
    the one red line (exit 5) names where the value in force was written, the variable and its value or the
    file and line; a secret's variable is named, never its value."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text("# gamead\nqueue:\n  partitions: abc\n", encoding="utf-8")
    integer = "must be a whole number, not"  # newcomer58: pydantic's "Input should be a valid integer, …" before
    line = _one_red_line(runner, [*command, "--config", str(cfg)])
    assert line == f"error: invalid configuration: queue.partitions (config file {cfg}, line 3): {integer} 'abc'"
    line = _one_red_line(runner, [*command, "--config", str(cfg)], env={"GAMEAD_QUEUE__PARTITIONS": "xyz"})
    assert line == f"error: invalid configuration: queue.partitions (GAMEAD_QUEUE__PARTITIONS=xyz): {integer} 'xyz'"
    line = _one_red_line(runner, command, env={"GAMEAD_QUEUE__PARTITIONS": "abc"})  # no file at all
    assert line == f"error: invalid configuration: queue.partitions (GAMEAD_QUEUE__PARTITIONS=abc): {integer} 'abc'"

    secret = '[{"name": "ci", "token": "s3cr3t,x", "role": "operator"}]'
    line = _one_red_line(runner, command, env={"GAMEAD_AUTH__TOKENS": secret})
    assert "auth.tokens.0.token (GAMEAD_AUTH__TOKENS): " in line and "s3cr3t" not in line

    cfg.write_text("autoscaler:\n  max_replicas: 2\n", encoding="utf-8")  # a rule across two settings
    line = _one_red_line(runner, [*command, "--config", str(cfg)], env={"GAMEAD_AUTOSCALER__MIN_REPLICAS": "5"})
    assert line.endswith("min_replicas (5) must not exceed max_replicas (2) (autoscaler.min_replicas from "
                         f"GAMEAD_AUTOSCALER__MIN_REPLICAS=5; autoscaler.max_replicas from config file {cfg}, line 2)")


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("worker:\n  concurency: 4\n",
         "worker.concurency ({at}, line 2): no such setting in section worker (did you mean 'concurrency'?)"),
        ("worker:\n  faults:\n    rat: 0.5\n",
         "worker.faults.rat ({at}, line 3): no such setting in section worker.faults (did you mean 'rate'?)"),
        ("worker:\n  faults:\n    mode: boom\n",
         "worker.faults.mode ({at}, line 3): must be one of retryable, permanent, crash or hang, not 'boom'"),
        ("queue:\n  repartition: perhaps\n",
         "queue.repartition ({at}, line 2): must be true or false, not 'perhaps'"),
        ("worker: 5\n", "worker ({at}, line 1): must be a section of settings (key: value), not one value"),
        ("queue:\n  ack_wait: 2h30\n", "queue.ack_wait ({at}, line 2): cannot read duration '2h30'"),
    ],
    ids=["unknown-key", "unknown-nested-key", "not-one-of", "not-a-boolean", "not-a-section", "duration"],
)
def test_a_bad_setting_is_refused_in_gamead_words_not_pydantic_s(runner: CliRunner, tmp_path: Path, text: str,
                                                                said: str) -> None:
    """newcomer58: a mistyped key of a section was ``worker.concurency (…): Extra inputs are not permitted`` (the
    top level's said ``unknown top-level key … (did you mean …)``), a section given a number ``Input should be a
    valid dictionary or instance of WorkerSettings``, a choice ``Input should be 'retryable', …`` without the value,
    a duration ``Value error, cannot read …``: 6 of 6 spoke pydantic; now each in the README's words (an unknown
    key, a bad value), with the key meant or the value read, from the file and a variable alike."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text(text, encoding="utf-8")
    line = _one_red_line(runner, ["config", "show", "--config", str(cfg)])
    assert line.startswith("error: invalid configuration: " + said.format(at=f"config file {cfg}")), line
    assert "Input should" not in line and "not permitted" not in line and "Value error" not in line
    line = _one_red_line(runner, ["config", "show"], env={"GAMEAD_WORKER__FAULTS__RAT": "0.5"})
    assert line.endswith("worker.faults.rat (GAMEAD_WORKER__FAULTS__RAT): no such setting in section worker.faults "
                         "(did you mean 'rate'?)"), line


def test_path_none_then_default_then_explicit(runner: CliRunner, isolated_env: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["config", "path"])
    # range46: it said a bare "none"; now what is in force instead, as gamead up's config line says it
    assert result.exit_code == 0 and result.stdout == "no config file (defaults, GAMEAD_* and flags)\n"

    (isolated_env / "config.yaml").write_text("{}\n", encoding="utf-8")
    result = runner.invoke(app, ["config", "path"])
    assert Path(result.stdout.strip()) == (isolated_env / "config.yaml").resolve()

    other = tmp_path / "other.yaml"
    other.write_text("{}\n", encoding="utf-8")
    result = runner.invoke(app, ["config", "path", "--config", str(other)])
    assert Path(result.stdout.strip()) == other.resolve()


def test_path_missing_explicit_file(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, ["config", "path", "--config", str(tmp_path / "missing.yaml")])
    assert result.exit_code == exitcodes.CONFIG
    assert "missing.yaml" in result.stderr


#: client verbs, each with an --api nothing listens on (never reached: the config is read first)
_VERBS = (["config", "show"], ["config", "show", "--stack"], ["ads", "list"], ["submit", "--count", "1"], ["doctor"],
          ["dlq", "list"], ["workers"], ["scale", "status"], ["audit"])


@pytest.mark.parametrize("verb", _VERBS, ids=" ".join)
def test_a_missing_config_file_is_exit_5_for_every_verb_as_the_readme_says(runner: CliRunner, tmp_path: Path,
                                                                           verb: list[str]) -> None:
    """small56: the exit-code table said 2 for a missing input file and 5 for the config file, and left open which
    a missing ``--config`` file is. It is the configuration: 5 for every verb, one red line naming it, whether
    ``--config`` or ``GAMEAD_CONFIG`` names it (the README says so now). The server verbs read it the same way
    first (``serve``, ``worker``, ``up``: :func:`gamead_cli.options.settings_from`)."""
    missing = str(tmp_path / "missing.yaml")
    api = [] if verb[0] == "config" else ["--api", "http://127.0.0.1:9"]
    for argv, env in (([*verb, *api, "--config", missing], None), ([*verb, *api], {"GAMEAD_CONFIG": missing})):
        result = runner.invoke(app, argv, env=env)
        lines = unstyle(result.stderr).strip().splitlines()
        assert result.exit_code == exitcodes.CONFIG, (argv, result.output)
        assert len(lines) == 1 and lines[0].startswith(f"error: cannot read config file {missing}"), lines


def test_show_masks_passwords_inside_urls(runner: CliRunner) -> None:
    """Issue 11.4: ``nats.url = nats://user:PW@host`` and ``redis.url`` printed by ``config show`` (yaml and json)."""
    env = {"GAMEAD_NATS__URL": "nats://gamead:PW-nats@nats:4222", "GAMEAD_REDIS__URL": "redis://:PW-redis@valkey:6379/0"}
    for fmt in ("yaml", "json"):
        result = runner.invoke(app, ["config", "show", "-o", fmt], env=env)
        assert result.exit_code == 0, result.output
        assert "PW-" not in result.output
    data = show(runner, env=env)
    assert data["nats"]["url"] == "nats://gamead:***@nats:4222"
    assert data["redis"]["url"] == "redis://:***@valkey:6379/0"


def test_path_of_a_file_that_is_no_config(runner: CliRunner, tmp_path: Path) -> None:
    """``config path --config /dev/zero`` said "does not exist"; it says why the file cannot be the config."""
    result = runner.invoke(app, ["config", "path", "--config", "/dev/zero"])
    assert result.exit_code == exitcodes.CONFIG
    assert "/dev/zero is not a regular file" in unstyle(result.stderr)


def test_path_takes_o_json(runner: CliRunner, isolated_env: Path, tmp_path: Path) -> None:
    import json

    result = runner.invoke(app, ["config", "path", "-o", "json"])
    assert result.exit_code == 0 and json.loads(result.stdout) == {"path": None, "source": None}
    (isolated_env / "config.yaml").write_text("{}\n", encoding="utf-8")
    result = runner.invoke(app, ["config", "path", "-o", "json"])
    # newcomer49: "default" (read as the built-in values elsewhere) for ./config.yaml: now where it was found
    assert json.loads(result.stdout) == {"path": str((isolated_env / "config.yaml").resolve()),
                                         "source": "working directory"}
    other = tmp_path / "other.yaml"
    other.write_text("{}\n", encoding="utf-8")
    result = runner.invoke(app, ["config", "path", "--config", str(other), "--output", "json"])
    assert json.loads(result.stdout) == {"path": str(other.resolve()), "source": "--config"}
    result = runner.invoke(app, ["config", "path", "-o", "json"], env={"GAMEAD_CONFIG": str(other)})
    assert json.loads(result.stdout) == {"path": str(other.resolve()), "source": "GAMEAD_CONFIG"}


def test_show_says_what_a_setting_of_0_means(runner: CliRunner) -> None:
    """newcomer49: ``give_up_after: 0.0s`` read as "give up at once", where 0 means keep trying for ever. A setting
    at 0 whose help says what 0 means is shown with it, as a YAML comment (the output still reads back as it was);
    one not at 0 is shown bare. Without the fix the line was ``  give_up_after: 0.0s``."""
    lines = runner.invoke(app, ["config", "show"]).stdout.splitlines()
    assert "  give_up_after: 0.0s  # 0 = keep trying for ever" in lines
    assert "  nats_port: 0  # 0 = free port" in lines and "    rate: 0.0  # 0 = off" in lines
    text = runner.invoke(app, ["config", "show"], env={"GAMEAD_NATS__GIVE_UP_AFTER": "30"}).stdout
    assert "  give_up_after: 30s" in text.splitlines() and yaml.safe_load(text)["nats"]["give_up_after"] == "30s"


def _directory(where: Path) -> None:
    where.mkdir()  # `docker run -v ./missing.yaml:/app/config.yaml` makes a directory there


def _dangling(where: Path) -> None:
    where.symlink_to(where.parent / "removed.yaml")  # a link to a config that was moved away


@pytest.mark.parametrize(
    ("make", "why"),
    [(_directory, "is not a regular file"), (lambda where: os.mkfifo(where), "is not a regular file"),
     (_dangling, "No such file or directory")],
    ids=["directory", "fifo", "dangling-symlink"],
)
@pytest.mark.parametrize("argv", [["config", "path"], ["config", "show"], ["config", "show", "-o", "json"]])
def test_a_config_yaml_here_that_is_no_file_is_refused_not_skipped(
    runner: CliRunner, isolated_env: Path, make: Callable[[Path], None], why: str, argv: list[str]
) -> None:
    """A ./config.yaml that is a directory, a FIFO or a dangling symlink was skipped without a word: `config path`
    said "no config file (defaults, …)", exit 0, and every verb ran on the defaults the operator had meant to change.
    Refused as `--config` of the same path is: one line naming it and why, exit 5."""
    make(isolated_env / "config.yaml")
    result = runner.invoke(app, argv)
    lines = unstyle(result.stderr).strip().splitlines()
    assert result.exit_code == exitcodes.CONFIG, (result.exit_code, result.output)
    assert len(lines) == 1 and lines[0].startswith("error: ") and "config.yaml" in lines[0] and why in lines[0], lines
    if "json" in argv:  # -o json: the error's document on stdout too
        assert json.loads(result.stdout)["error"]["code"] == "config_error", result.stdout
    else:
        assert result.stdout == ""
