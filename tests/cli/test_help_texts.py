"""Every verb's --help has an example and no hole left by a swallowed ``[markup]`` (issue C4 item 8)."""

from __future__ import annotations

import itertools
import re
import shlex
import subprocess
from typing import Any

import pytest
from typer.testing import CliRunner

from gamead_cli.command_table import COMMANDS, load_command
from gamead_cli.main import app
from tests.support import clean_env, gamead_argv

#: every verb's click command, built once for the whole module's collection (each one imports its module)
LOADED = {name: load_command(name) for name in COMMANDS}


def _paths() -> list[list[str]]:
    """Every runnable command as its argv: ``[up]``, ``[dlq, replay]``…"""
    out: list[list[str]] = []

    def walk(command: Any, path: list[str]) -> None:
        subs = getattr(command, "commands", None)
        if subs:
            for name, sub in subs.items():
                walk(sub, [*path, name])
        else:
            out.append(path)

    for name, command in LOADED.items():
        walk(command, [name])
    return out


def _command(path: list[str]) -> Any:
    """The click command of ``path``: ``[]`` the root group, ``[dlq, replay]`` a group's subcommand."""
    if not path:
        from typer.main import get_command

        return get_command(app)
    command = LOADED[path[0]]
    for name in path[1:]:
        command = command.commands[name]
    return command


PATHS = _paths()
STRAY = re.compile(r"[\w)\]] [.,;:](?=\s|$)")


@pytest.mark.parametrize("path", PATHS, ids=[" ".join(p) for p in PATHS])
def test_every_verb_help_has_an_example_and_no_stray_space(path: list[str]) -> None:
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.translate({ord(c): " " for c in "│╭╮╰╯─"}).split())
    assert "Example" in text, f"`gamead {' '.join(path)} --help` shows no example"
    # a `[dlq.replay_rate]` eaten as rich markup leaves "Replays per second ." (a word, a space, a lone mark)
    assert not STRAY.search(text), STRAY.search(text)


def test_the_walk_covers_the_review_cases() -> None:
    assert {("scale", "status"), ("scale", "clear"), ("dlq", "replay")} <= {tuple(p) for p in PATHS}


GROUPS = [[name] for name, command in LOADED.items() if getattr(command, "commands", None)]
COMPLETION = ("--install-completion", "--show-completion")


def _description(output: str) -> list[str]:
    """The lines of a rich ``--help`` page between the usage line and the first box (the docstring)."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if "Usage:" in line) + 1
    end = next((i for i, line in enumerate(lines) if line.lstrip().startswith("╭")), len(lines))
    return [line.rstrip() for line in lines[start:end]]


@pytest.mark.parametrize("path", PATHS + GROUPS, ids=[" ".join(p) for p in PATHS + GROUPS])
def test_every_verb_help_reads_cleanly_at_80_columns(path: list[str]) -> None:
    """Reviewer V8 / newcomer N8: ``--install-completion`` and ``--show-completion`` were in every verb's help,
    and at 80 columns each hard-wrapped docstring line wrapped again (``… the`` alone on a line). Completion is
    the root's option only; a paragraph is wrapped by the terminal, so no line of it ends early."""
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    for option in COMPLETION:
        assert option not in result.output, f"`gamead {' '.join(path)} --help` shows {option}"
    assert max(len(line) for line in result.output.splitlines()) <= 80
    text = _description(result.output)
    def prose(line: str) -> bool:  # not blank, not an example (indented, or a command line of a group's help)
        return bool(line.strip()) and not line.startswith("   ") and not line.strip().startswith("gamead ")

    for line, after in zip(text, text[1:]):
        continued = prose(line) and prose(after)
        if continued:  # a line followed by more of its paragraph was wrapped by the terminal: it is (nearly) full
            assert len(line) >= 50, f"`gamead {' '.join(path)} --help` breaks early at 80 columns: {line!r}"


def test_completion_is_offered_on_the_root_help_only() -> None:
    root = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "80"})
    assert root.exit_code == 0
    assert all(option in root.output for option in COMPLETION)
    # the real command from bash (Typer asks shellingham for the parent shell: under `make`, sh, "not supported")
    command = " ".join(shlex.quote(a) for a in gamead_argv("--show-completion"))
    shown = subprocess.run(["bash", "-c", f"{command}; true"], env=clean_env(), capture_output=True, text=True,
                           timeout=60)
    assert shown.returncode == 0 and "_GAMEAD_COMPLETE" in shown.stdout, shown.stderr


#: the error classes a DLQ entry can carry: gamead_core.errors' task errors, and what the workers and the doctor write
def _error_classes() -> set[str]:
    from gamead_core import errors

    task = {n for n, c in vars(errors).items() if isinstance(c, type) and issubclass(c, errors.TaskError)}
    return task | {"WorkerLost", "Unknown"}


def _examples(path: list[str]) -> list[str]:
    """Every ``gamead …`` example in the help page of ``path`` as the terminal shows it (its description, above
    the boxes; rendered, so at test time: the parity test below)."""
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    return _example_lines(_description(result.output))


def _source_examples(path: list[str]) -> list[str]:
    """Every ``gamead …`` example in the help text of ``path``'s command (what its page shows, unrendered: no
    ``--help`` rendered 4 times at collection, once per pytest-xdist worker)."""
    return _example_lines((_command(path).help or "").splitlines())


def _example_lines(lines: list[str]) -> list[str]:
    """The ``gamead …`` examples in ``lines``: the lines that start with it, and ``Example: gamead …`` (several
    joined by `` · ``); comments and pipes cut."""
    out = []
    for raw in lines:
        line = raw.strip().removeprefix("Example:").strip()
        for part in line.split(" · ") if line.startswith("gamead ") else []:
            command = re.split(r"\s{2,}|\s\|\s", part.strip())[0]
            for piece in re.split(r"\s&&\s|(?<=:)\s(?=gamead )", command):  # `a && b`; `gamead up, then …: b`
                if piece.startswith("gamead "):
                    out.append(re.sub(r"^(gamead [\w-]+),.*", r"\1", piece.strip()))
    return out


def test_the_dashboards_command_examples_name_real_error_classes() -> None:
    """``:replay class=Timeout`` (top's help, the README) matched no entry: workers write ``TaskTimeout``."""
    from gamead_cli.commands import top
    from gamead_cli.tui.commands import COMMANDS as TUI_COMMANDS

    texts = [spec.usage for spec in TUI_COMMANDS] + [top.__doc__ or ""]
    named = {m for text in texts for m in re.findall(r"class=(\w+)", text)}
    assert named and named <= _error_classes(), named - _error_classes()


EXAMPLES = sorted({(" ".join(p), e) for p in [*PATHS, *GROUPS, []] for e in _source_examples(p)})


@pytest.mark.parametrize("path", [*PATHS, *GROUPS, []], ids=[" ".join(p) or "gamead" for p in [*PATHS, *GROUPS, []]])
def test_the_examples_checked_are_those_each_help_page_shows(path: list[str]) -> None:
    """The examples below are read from the commands' help texts; each page shows the same ones, in order (a
    page wrapped at its width shows the start of a long one: the root's, by Click's formatter at 80 columns)."""
    shown, source = _examples(path), _source_examples(path)
    assert len(shown) == len(source), (shown, source)
    for seen, written in zip(shown, source):
        assert written.startswith(seen), (seen, written)


@pytest.mark.parametrize(("where", "example"), EXAMPLES, ids=[e for _, e in EXAMPLES])
def test_every_help_example_parses_and_names_real_error_classes(where: str, example: str) -> None:
    """ops13 finding 4: every example in every ``--help`` page is a command line gamead accepts (its flags and
    arguments parse; nothing is run), and the error classes it names exist (``--error-class TaskTimeout``; the
    README's ``class=Timeout`` matched nothing)."""
    from typer.main import get_command

    args = shlex.split(example.replace("…", "x"))[1:]
    command: Any = get_command(app)
    ctx = command.context_class(command, info_name="gamead")
    rest = list(args)
    while getattr(command, "commands", None) is not None:  # down to the verb
        if getattr(command, "invoke_without_command", False) and (not rest or rest[0].startswith("-")):
            break  # a group that runs without a verb: `gamead workers -o json` (its verbs: quiet, resume)
        assert rest, f"{where}: {example!r} names no verb"
        name, *rest = rest
        command = load_command(name) if ctx.parent is None else command.get_command(ctx, name)  # (root: lazy)
        assert command is not None, f"{where}: {example!r}: no command {name!r}"
        ctx = command.context_class(command, info_name=name, parent=ctx)
    with command.make_context(ctx.info_name, rest, parent=ctx.parent):  # what does not parse raises here
        pass
    for flag, value in itertools.pairwise(args):
        if flag in ("--error-class", "-e") or flag.startswith("class="):
            assert value in _error_classes(), f"{where}: {example!r} names no real error class: {value}"
    for word in args:
        if word.startswith("class="):
            assert word[6:] in _error_classes(), f"{where}: {example!r} names no real error class: {word}"


@pytest.mark.parametrize("path", PATHS, ids=[" ".join(p) for p in PATHS])
def test_usage_lines_name_arguments_as_the_help_text_does(path: list[str]) -> None:
    """``gamead scale set [OPTIONS] {replicas}`` while the text said REPLICAS; ``{ID}``, ``[[JOB]]``."""
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
    usage = next(line for line in result.output.splitlines() if "Usage:" in line)
    assert not re.search(r"[{}]|\[\[|\b[a-z_]+\b(?=\s*$)", usage.split("[OPTIONS]")[-1]), usage


@pytest.mark.parametrize(("argv", "said"), [
    (["ads", "list", "--status", "bogus"],
     "--status must be one of queued, processing, completed, failed or dead, not 'bogus' (see `gamead ads list"),
    (["workers", "-o", "yaml"], "--output must be table or json, not 'yaml' (see `gamead workers --help`)"),
    (["config", "show", "-o", "table"], "--output must be yaml or json, not 'table'"),
    (["workers", "--role", "boss"], "--role must be api or worker, not 'boss'"),
    (["dlq", "jobs", "--state", "zombie"],
     "--state must be one of queued, running, succeeded, failed, cancelled or interrupted, not 'zombie'"),
    (["dlq", "jobs", "--kind", "resurrect"], "--kind must be one of replay, purge, import or repair, not 'resurrect'"),
    (["audit", "--outcome", "bogus"],
     "--outcome must be one of accepted, refused, failed, succeeded, cancelled or interrupted, not 'bogus'"),
    (["audit", "--action", "bogus"], "--action must be one of replay, purge, import, repair, job.cancel, "),
], ids=["status", "output", "config-output", "role", "state", "kind", "outcome", "action"])
def test_a_refused_choice_is_said_one_way(argv: list[str], said: str) -> None:
    """regress41 F3: with Typer 0.29 (what a fresh clone installs) every choice option refused a value as
    ``Invalid value for '--output' / '-o': Value error, 'yaml' is not one of …``: pydantic's word for a
    validator's ValueError. newcomer58: then four ways for one refusal (``Invalid value for '--status' / '-s':
    'bogus' is not one of 'queued', …``, ``Invalid value for --state: 'zombie': use one of …``, ``… --action:
    'bogus' is not one of …``, ``Invalid value for --role: must be api or worker``, without the value): 8 of 8
    here. Now each in the one sentence of a number past its range (``--limit must be 1 to 500, not 0``), exit 2."""
    api = [] if argv[0] == "config" else ["--api", "http://127.0.0.1:9"]  # refused before any request
    result = CliRunner().invoke(app, [*argv, *api], env={"COLUMNS": "200"})
    assert result.exit_code == 2, result.output
    line = result.stderr.strip()
    assert line.startswith("error: " + said) and "\n" not in line, result.stderr
    assert "Value error" not in line and "Invalid value" not in line, line


def test_audit_help_names_every_action_and_outcome_it_takes() -> None:
    """newcomer49: `gamead audit --help` listed ten actions while `--action` takes twelve: the trail shows
    `worker.quiet` records (`gamead workers quiet`), and `--action worker.quiet` filters them, but neither the help
    nor the README named it (nor `worker.resume`). The help names every action and outcome the flag accepts."""
    from gamead_core.audit.model import OUTCOMES, AuditAction

    result = CliRunner().invoke(app, ["audit", "--help"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.translate({ord(c): " " for c in "│╭╮╰╯─"}).split())
    missing = [a.value for a in AuditAction if not re.search(rf"[ ,:]{re.escape(a.value)}[,.]", text)]
    assert not missing, f"`gamead audit --help` does not name the action(s) {missing}"
    assert all(re.search(rf"[ ,:]{o}[,.]", text) for o in OUTCOMES), text


@pytest.mark.parametrize("path", [["submit"], ["top"]], ids=["submit", "top"])
def test_a_duration_options_default_is_shown_with_its_unit(path: list[str]) -> None:
    """newcomer49: `gamead submit --help` showed `--timeout DURATION … [default: 60.0]` and `gamead top --help`
    `--refresh DURATION … [default: 1.0]`: a bare figure beside a flag that takes 90s, 10m, 500ms. Every
    DURATION option's shown default is a duration with its unit, and the command still reads it (60 s, 1 s)."""
    from gamead_core.durations import parse_duration

    shown = {}
    for param in _command(path).params:
        if param.metavar == "DURATION" and param.default is not None and param.show_default is not False:
            assert not re.fullmatch(r"[\d.]+", str(param.default)), (param.name, param.default)
            shown[param.name] = parse_duration(str(param.default))
    assert shown == {"submit": {"timeout": 60.0}, "top": {"refresh": 1.0}}[path[0]]
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    assert re.search(r"\[default: (60s|1s)\]", result.output), result.output


@pytest.mark.parametrize("path", [*PATHS, *GROUPS, []], ids=[" ".join(p) or "gamead" for p in [*PATHS, *GROUPS, []]])
def test_every_help_example_line_pastes_as_one_command(path: list[str]) -> None:
    """newcomer49: `gamead dlq jobs --help` showed `Example: gamead dlq jobs --state running · gamead dlq jobs
    01jb… --follow`, two commands on one line: pasted, the line is one command whose `·` and second `gamead` are
    refused (exit 2). Each example line of a help page is one command."""
    for line in (_command(path).help or "").splitlines():
        example = line.strip().removeprefix("Example:").strip()
        assert not (example.startswith("gamead ") and " · gamead " in example), line


@pytest.mark.parametrize("path", [["ads", "list"], ["dlq", "list"], ["dlq", "jobs"], ["audit"]],
                         ids=["ads list", "dlq list", "dlq jobs", "audit"])
def test_every_list_verb_takes_minus_n_for_its_limit(path: list[str]) -> None:
    """newcomer49: `dlq list`, `dlq jobs` and `audit` take `-n` for `--limit`, `ads list` took only `-l`
    (`gamead ads list -n 5`: No such option). Every list verb takes `-n` (`ads list` keeps `-l` too)."""
    result = CliRunner().invoke(app, [*path, "-n", "0"], env={"COLUMNS": "200"})
    assert result.exit_code == 2, result.output
    assert "--limit must be 1 to" in result.stderr and "not 0" in result.stderr, result.stderr


def test_replay_rate_help_writes_its_bound_as_the_refusal_does() -> None:
    """newcomer49: `gamead dlq replay --help` said `--rate … 0.001 to 100000` while its refusal says `--rate must be
    0.001 to 100,000` and `submit --help` `0.001 to 1,000,000`: every count the CLI prints has its separators."""
    shown = CliRunner().invoke(app, ["dlq", "replay", "--help"], env={"COLUMNS": "250"})
    refused = CliRunner().invoke(app, ["dlq", "replay", "--all", "--rate", "0"], env={"COLUMNS": "250"})
    assert refused.exit_code == 2 and "--rate must be 0.001 to 100,000, not 0" in refused.stderr, refused.stderr
    assert "Replays per second, 0.001 to 100,000 " in " ".join(shown.output.split()), shown.output


@pytest.mark.parametrize("path", PATHS, ids=[" ".join(p) for p in PATHS])
def test_time_and_sequence_flags_name_what_they_take(path: list[str]) -> None:
    """newcomer49: `scale set --for <str>`, `dlq list --since <str>` / `--until <str>` beside `--timeout DURATION`,
    and `--cursor <int range> [0<=x<=9223372036854775807]`: noise. They show DURATION, TIME|AGE and SEQ (ads list's
    opaque cursor CURSOR); the bound is still refused as before (test_bound_refusals)."""
    takes = {"--for": "DURATION", "--since": "TIME|AGE", "--until": "TIME|AGE", "--cursor": "SEQ", "--until-seq": "SEQ"}
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    assert "9223372036854775807" not in result.output, result.output
    for line in result.output.splitlines():
        cells = line.strip("│ ").split()
        if cells and cells[0] in takes:
            wanted = "CURSOR" if path == ["ads", "list"] and cells[0] == "--cursor" else takes[cells[0]]
            assert cells[1] == wanted, (path, line)


def test_top_help_says_its_default_logs_are_a_running_stacks() -> None:
    """newcomer56b: `gamead top --help` said the default --logs were the local `gamead up`'s "if it ran there",
    but a stopped stack's logs are never taken (tui.logs.default_log_dir: a running stack whose API is the one
    watched, as the README says); a reader of the help expected `l` to show the last run's logs."""
    top = LOADED["top"]
    logs = next(param for param in top.params if param.name == "logs")
    assert "while it runs and this dashboard watches its API" in (logs.help or ""), logs.help
    assert "while it runs and the dashboard watches its API" in " ".join((top.help or "").split())


@pytest.mark.parametrize("group", [[], ["dlq"], ["ads"]], ids=["gamead", "dlq", "ads"])
def test_a_group_run_alone_shows_its_help_on_stdout_once(group: list[str]) -> None:
    """newcomer57: `gamead` alone wrote its help to stderr (`gamead | less`: nothing, `gamead 2>/dev/null`: nothing)
    while `gamead dlq` alone wrote it to stdout and a blank line to stderr. Each now writes it once, on stdout, and
    nothing on stderr; exit 2 (bad usage: no command named)."""
    shown = subprocess.run(gamead_argv(*group), env=clean_env(COLUMNS="80"), capture_output=True, text=True,
                           timeout=60, stdin=subprocess.DEVNULL)
    assert shown.returncode == 2, shown.stderr
    assert shown.stdout.count("Usage: gamead") == 1 and "Commands" in shown.stdout, shown.stdout
    assert shown.stderr == ""
