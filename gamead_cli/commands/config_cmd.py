"""``gamead config``: the effective configuration and where it comes from."""

from __future__ import annotations

import json
import os
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
import yaml

from gamead_cli.formats import settings_shown
from gamead_cli.inputs import strict_dumps
from gamead_cli.options import NO_CONFIG_FILE, ConfigOpt, client_settings_from
from gamead_cli.program import follow_up
from gamead_cli.zero_notes import with_zero_notes, zero_meanings
from gamead_core.config import GameadSettings, check_file, config_path, load_settings, masked_dump
from gamead_core.datadir import STACK_ENV_FILE, running_stack
from gamead_core.datadir_find import stack_data_dir
from gamead_core.errors import ConfigError

app = typer.Typer(
    help="Show the effective configuration: defaults < config file < GAMEAD_* env vars < flags.\n\n"
    "[bold]Examples[/bold]\n\n"
    "  gamead config show\n"
    "  GAMEAD_WORKER__CONCURRENCY=8 gamead config show -o json | jq .worker",
    no_args_is_help=True,
    rich_markup_mode="rich",
)


class ConfigFormat(str, Enum):
    yaml = "yaml"
    json = "json"


@app.command("show")
def show(
    config: ConfigOpt = None,
    output: Annotated[
        ConfigFormat,
        typer.Option("--output", "-o", help="yaml for people, json for scripts.", case_sensitive=False),
    ] = ConfigFormat.yaml,
    stack: Annotated[
        bool,
        typer.Option("--stack", help="Show instead what the gamead up running on --data-dir (else "
                     "embedded.data_dir, ./.gamead or the nearest parent's) runs its API and workers with: "
                     "its config-in-force.yaml, plus the flags and GAMEAD_* it started them with, and the URL its "
                     "API serves."),
    ] = False,
    data_dir: Annotated[
        Path | None,
        typer.Option("--data-dir", help="The data dir of the gamead up to look at, as given to gamead up "
                     "\\[embedded.data_dir, default ./.gamead or the nearest parent's].", show_default=False),
    ] = None,
) -> None:
    """Print the effective configuration with every secret masked.

    Example: gamead config show --config prod.yaml -o json
    """
    if stack:  # the stack's settings need nothing of this directory's but, without --data-dir, where it runs
        settings = stack_settings(data_dir if data_dir is not None else stack_dir_here(config))
    else:
        settings = client_settings_from(config, None, talks=False)  # client.api_url: what a verb run here talks to
        where = data_dir if data_dir is not None else stack_data_dir(settings.embedded)  # a parent's too (left42)
        if (note := stack_note(where, config)) is not None:
            sys.stderr.write(note + "\n")
    data = masked_dump(settings)
    if output == ConfigFormat.json:
        text = strict_dumps(data, indent=2, default=str) + "\n"
    else:
        shown = settings_shown(settings, data)  # ack_wait: 30s (a duration, as a config file takes it), not 30.0
        text = yaml.safe_dump(shown, sort_keys=False, default_flow_style=False, allow_unicode=True)
        text = with_zero_notes(text, zero_meanings(settings, data))  # give_up_after: 0s  # 0 = keep trying for ever
    sys.stdout.write(text)


def stack_dir_here(config: Path | None) -> Path:
    """The data dir of the stack ``config show --stack`` shows when no ``--data-dir`` names one: this directory's
    ``embedded.data_dir`` (``config``, ``./config.yaml``, ``GAMEAD_*``), else ``./.gamead`` or the nearest parent's.
    Raises :class:`~gamead_core.errors.ConfigError` (exit 5) when that configuration does not load, saying it was
    read only for this and how to do without it (words55 F4: the bare error read as if the stack's were broken)."""
    try:
        return stack_data_dir(load_settings(config).embedded)
    except ConfigError as exc:
        raise ConfigError(f"{exc} (--stack reads this directory's configuration only for embedded.data_dir, where "
                          "the stack runs: give --data-dir DIR to show the stack's without it)") from None


def stack_settings(data_dir: Path) -> GameadSettings:
    """The settings the API and the workers of the ``gamead up`` running on ``data_dir`` run with: loaded as they
    load them, from the ``GAMEAD_*`` variables it starts them with (:data:`~gamead_core.datadir.STACK_ENV_FILE`,
    its config copy named there by ``GAMEAD_CONFIG``) instead of this shell's. Each worker also gets its own
    ``--id`` and ``/metrics`` port, not shown; ``client.api_url`` is the URL its API serves (its
    ``gamead-up.json``), not the default the children never use. Raises ``typer.BadParameter`` (exit 2) when no ``gamead up`` runs
    there, or it started before it wrote that file; :class:`~gamead_core.errors.ConfigError` (exit 5) if the
    settings no longer load (its copy was edited or removed)."""
    running = running_stack(data_dir)
    if running is None:
        raise typer.BadParameter(f"no gamead up runs on {data_dir} (--data-dir DIR names a stack's; else "
                                 "embedded.data_dir: by default ./.gamead here or in the nearest parent directory "
                                 "that has one)", param_hint="--stack")
    where = data_dir / STACK_ENV_FILE
    try:
        env = json.loads(where.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise typer.BadParameter(f"the gamead up on {data_dir} (pid {running.pid}) has not recorded its children's "
                                 f"settings ({STACK_ENV_FILE}): it is still starting, or started before gamead did "
                                 "so", param_hint="--stack") from None
    except (OSError, ValueError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not JSON"
        raise typer.BadParameter(f"cannot read {where}: {why}", param_hint="--stack") from None
    if not isinstance(env, dict):
        raise typer.BadParameter(f"{where} is not a JSON object", param_hint="--stack")
    saved = dict(os.environ)
    try:  # as a child loads them: this process's environment less its GAMEAD_* (any case), plus the stack's
        for name in [n for n in os.environ if n.upper().startswith("GAMEAD_")]:
            del os.environ[name]
        os.environ.update({str(k): str(v) for k, v in env.items() if str(k).upper().startswith("GAMEAD_")})
        settings = load_settings()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    if running.api_url:  # its children never read client.api_url: show the URL its API serves (gamead-up.json)
        settings.client = settings.client.model_copy(update={"api_url": running.api_url})
    return settings


def stack_note(data_dir: Path, config: Path | None) -> str | None:
    """The line ``config show`` writes to stderr where a ``gamead up`` runs on ``data_dir`` (None elsewhere): which
    configuration that stack runs with (``config-in-force.yaml``, its settings written at its start) and that what is
    shown is this directory's settings (``config``: the file given, if any), not the stack's."""
    stack = running_stack(data_dir)
    if stack is None:
        return None
    copy = data_dir / "config-in-force.yaml"
    given = f"--config {config}" if config is not None else "this directory's config file"
    return (f"note: a gamead up (pid {stack.pid}, API {stack.api_url or 'unknown'}) runs on {data_dir}; it and its "
            f"children run with {copy} (the settings of its start: its config file, flags and the GAMEAD_* "
            f"variables it was started with). Shown below: the settings of {given} and GAMEAD_* here, not the "
            f"stack's (client.api_url: the API commands run here talk to). The stack's: "
            f"{follow_up('config', 'show', '--stack', '--data-dir', os.path.abspath(data_dir))}")


class PathFormat(str, Enum):
    text = "text"
    json = "json"


@app.command("path")
def path(
    ctx: typer.Context,
    config: ConfigOpt = None,
    output: Annotated[
        PathFormat,
        typer.Option("--output", "-o", help="text for people, json for scripts.", case_sensitive=False),
    ] = PathFormat.text,
) -> None:
    """Print which config file is in force (--config, else $GAMEAD_CONFIG, else ./config.yaml), or "no config file
    (defaults, GAMEAD_* and flags)";
    -o json: {"path": ... or null, "source": "--config" | "GAMEAD_CONFIG" | "working directory" | null}.

    Example: gamead config path -o json
    """
    found = config_path(config)
    if found is not None:
        check_file(found)  # missing, /dev/zero, a FIFO, a directory, over 1 MiB: the reason, exit 5
    if output == PathFormat.json:
        given = ctx.get_parameter_source("config")  # --config or $GAMEAD_CONFIG (the option's envvar)
        # ./config.yaml: "working directory", where it was found ("default" read as the built-in values: newcomer49)
        source = (None if found is None else "working directory" if config is None
                  else "GAMEAD_CONFIG" if getattr(given, "name", None) == "ENVIRONMENT" else "--config")
        data = {"path": str(found.resolve()) if found else None, "source": source}
        sys.stdout.write(strict_dumps(data) + "\n")
        return
    sys.stdout.write(f"{found.resolve() if found else NO_CONFIG_FILE}\n")  # range46: was a bare "none"
