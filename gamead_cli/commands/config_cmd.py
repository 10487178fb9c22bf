"""``gamead config``: the effective configuration and where it comes from."""

from __future__ import annotations

import sys
from enum import Enum
from typing import Annotated

import typer
import yaml

from gamead_cli.inputs import strict_dumps
from gamead_cli.options import ConfigOpt, settings_from
from gamead_core.config import check_file, config_path, masked_dump

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
) -> None:
    """Print the effective configuration with every secret masked.

    Example: gamead config show --config prod.yaml -o json
    """
    data = masked_dump(settings_from(config))
    if output == ConfigFormat.json:
        text = strict_dumps(data, indent=2, default=str) + "\n"
    else:
        text = yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True)
    sys.stdout.write(text)


@app.command("path")
def path(config: ConfigOpt = None) -> None:
    """Print which config file is in force (--config, else $GAMEAD_CONFIG, else ./config.yaml), or "none".

    Example: gamead config path
    """
    found = config_path(config)
    if found is not None:
        check_file(found)  # missing, /dev/zero, a FIFO, a directory, over 1 MiB: the reason, exit 5
    sys.stdout.write(f"{found.resolve() if found else 'none'}\n")
