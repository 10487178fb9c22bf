"""Every command a verb prints as the next step runs verbatim, pasted into another terminal in another directory
(attack25 findings 3 and 4): it names ``gamead`` as that terminal finds it (the venv's full path when ``gamead``
is not on the ``PATH``), carries the ``--api`` of the API this verb talked to (however it found it) and the
``--config`` in force (absolute), and is printed on one line however narrow the terminal (rich hard-wrapped it
at 80 columns with a real newline, so the first line pasted ran another command)."""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from gamead_cli.main import app
from gamead_cli.program import gamead_program
from gamead_core.embedded import EmbeddedNats
from gamead_core.ad_ids import new_ad_id
from gamead_core.durations import parse_duration
from gamead_core.models import DlqEntry
from tests.support import Proc, drop_gamead_env, start_api, submission

#: a narrow terminal (rich reads COLUMNS; the runner's output is a pipe, as in the drill), a PATH without this venv
#: (gamead is then named by its full path): every command must still stand whole on one line
NARROW = {"COLUMNS": "40", "PATH": "/usr/bin:/bin", "GAMEAD_CLIENT__RETRY_FOR": "0"}


def printed(text: str, lead: str) -> list[str]:
    """The argv of the command printed after ``lead`` (up to a `` · `` or a closing parenthesis or backtick),
    which must stand on one line of ``text``."""
    lines = [line for line in text.splitlines() if lead in line]
    assert len(lines) == 1, text
    command = lines[0].split(lead, 1)[1].split(" · ")[0].split("`")[0].rstrip(")")
    return shlex.split(command)


def invoke(*args: str, **env: str) -> Result:
    return CliRunner().invoke(app, list(args), env={**NARROW, **env})


@pytest.fixture
def lone_api(fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path) -> str:
    """An API with no worker: a submitted ad stays queued."""
    api, url = start_api(fresh_nats().url, tmp_path)
    procs.append(api)
    return url


def test_every_printed_next_command_reaches_the_same_api_on_one_line(
        lone_api: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = lone_api
    drop_gamead_env(monkeypatch, tmp_path)
    monkeypatch.setenv("PATH", NARROW["PATH"])
    program = gamead_program()
    assert program == "gamead" or Path(program).is_absolute()

    submitted = invoke("submit", "-t", "Hint Saga", "-g", "RPG", "--api", url)
    assert submitted.exit_code == 0, submitted.output
    follow = printed(submitted.stdout, "follow it with: ")
    ad_id = follow[3]
    assert follow == [program, "ads", "get", ad_id, "--api", url]
    assert invoke(*follow[1:]).exit_code == 0

    waited = invoke("submit", "-t", "Wait Saga", "-g", "RPG", "--wait", "--timeout", "0.3", "--api", url)
    assert waited.exit_code == 1, waited.output
    later = printed(waited.stderr, "check later with: ")
    assert later[:3] == [program, "ads", "get"] and later[4:] == ["--api", url]

    scaled = invoke("scale", "set", "2", "--for", "1m", "--api", url)
    assert scaled.exit_code == 0, scaled.output
    undo = printed(scaled.stdout, "undo with: ")
    assert undo == [program, "scale", "clear", "--api", url]
    assert invoke(*undo[1:]).exit_code == 0
    _undo_restores_the_override_replaced(program, url)

    dead = tmp_path / "dead.jsonl"  # one dead-lettered ad, so that a replay job starts
    entry = DlqEntry.model_validate(dict(
        ad_id=new_ad_id(), title="Dead Saga", priority=3, attempts=5, error_class="TaskTimeout", error_message="slow",
        retryable=True, first_failure_at="2024-01-01T00:00:00Z", last_failure_at="2024-01-01T00:00:00Z",
        dead_at="2024-01-01T00:00:00Z", submitted_at="2024-01-01T00:00:00Z", ad=submission(title="Dead Saga")))
    dead.write_text(entry.model_dump_json(by_alias=True) + "\n")
    imported = invoke("dlq", "import", str(dead), "--api", url)
    assert imported.exit_code == 0, imported.output
    replay = invoke("dlq", "replay", "--all", "--yes", "--detach", "--api", url)
    assert replay.exit_code == 0, replay.output
    jobs = printed(replay.stdout, "started (replay): ")
    assert jobs[:3] == [program, "dlq", "jobs"] and jobs[4:] == ["--follow", "--api", url]

    # no --api: the API came from GAMEAD_API_URL, which another terminal does not have; and a relative --config
    (tmp_path / "c.yaml").write_text("client: {timeout: 5}\n")
    found = invoke("submit", "-t", "Env Saga", "-g", "RPG", "--config", "c.yaml", GAMEAD_API_URL=url)
    assert found.exit_code == 0, found.output
    follow = printed(found.stdout, "follow it with: ")
    assert follow[4:] == ["--api", url, "--config", str(tmp_path / "c.yaml")]


def _undo_restores_the_override_replaced(program: str, url: str) -> None:
    """words58: ``scale set 3`` over ``scale set 2 --for 1h`` said ``undo with: gamead scale clear``, which ends
    every override: it names the command that sets the 2 again for what was left of it, then ``scale clear``."""
    assert invoke("scale", "set", "2", "--for", "1h", "--api", url).exit_code == 0
    scaled = invoke("scale", "set", "3", "--for", "1m", "--api", url)
    assert scaled.exit_code == 0, scaled.output
    undo = printed(scaled.stdout, "undo with: ")
    assert undo[:5] == [program, "scale", "set", "2", "--for"] and undo[6:] == ["--api", url], undo
    assert 3000 < parse_duration(undo[5]) <= 3600, undo
    assert "the policy alone: " in scaled.stdout, scaled.stdout
    restored = invoke(*undo[1:], "-o", "json")
    assert restored.exit_code == 0, restored.output
    assert json.loads(restored.stdout)["override"]["replicas"] == 2, restored.stdout
    assert invoke("scale", "clear", "--api", url).exit_code == 0
