"""Options shared by many commands, defined once, and the settings they feed."""

from __future__ import annotations

import re
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:  # imported on use: `gamead --help` must not load pydantic or httpx
    from gamead_cli.client import ApiClient
    from gamead_core.config import GameadSettings


class OutputFormat(str, Enum):
    table = "table"
    json = "json"


ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="YAML config file (default: $GAMEAD_CONFIG, else ./config.yaml if present).",
        envvar="GAMEAD_CONFIG",
        show_envvar=False,
    ),
]
OutputOpt = Annotated[
    OutputFormat,
    typer.Option("--output", "-o", help="table for people, json for scripts.", case_sensitive=False),
]
ApiOpt = Annotated[
    str | None,
    typer.Option(
        "--api",
        help="URL of the gamead API \\[env GAMEAD_API_URL; default http://127.0.0.1:8080].",
        show_default=False,
    ),
]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]


def confirm(question: str, yes: bool) -> None:
    """Ask ``question`` on the terminal (default no) unless ``--yes`` was given.

    Raises :class:`~gamead_core.errors.GameadError` (exit 1) without ``--yes`` when stdin is no terminal (a
    script must say it), and ``typer.Exit(1)`` when the operator answers no.
    """
    if yes:
        return
    import sys

    from gamead_cli import exitcodes
    from gamead_core.errors import GameadError

    if not sys.stdin.isatty():
        raise GameadError(f"{question.rstrip('?')}: refusing without --yes (no terminal to ask)")
    if not typer.confirm(question, default=False, err=True):
        raise typer.Exit(exitcodes.ERROR)


def settings_from(config: Path | None, **overrides: Any) -> GameadSettings:
    """Load settings for a command: its flags (``overrides``, nested dicts) win over everything else.

    Raises :class:`~gamead_core.errors.ConfigError` (exit 5) for a bad file or ``GAMEAD_*`` value.
    """
    from gamead_core.config import load_settings

    return load_settings(config, **overrides)


def api_client(config: Path | None, api: str | None) -> ApiClient:
    """The API client of a client command: ``--api`` wins over GAMEAD_API_URL and the config file."""
    from gamead_cli.client import ApiClient

    return ApiClient.from_settings(settings_from(config, client={"api_url": api}).client)


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def duration_seconds(text: str | None) -> float | None:
    """``30s`` / ``10m`` / ``2h`` / ``7d`` / ``1w`` / ``90`` (seconds) → seconds; None if it is not one. Pure."""
    m = _DURATION.match(text or "")
    return float(m.group(1)) * _UNIT_SECONDS[m.group(2)] if m else None
