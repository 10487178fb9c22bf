"""A flag that feeds a setting (``--port`` → ``api.port``) refused for its own value is bad usage, exit 2, naming the
flag, as every other flag's value is and ``--api`` was already (README, the exit codes); the same value from a
``GAMEAD_*`` variable or the config file stays an invalid configuration, exit 5, naming where it was written. Before
(attack57b), ``gamead up --port 99999`` was exit 5 (``invalid configuration: api.port (a command-line option) …``)
while ``--metrics-port 99999`` was exit 2 (``--metrics-port must be 1 to 65,535, not 99,999``), as were
``--nats-url`` and ``--data-dir ""`` against ``--concurrency``. A flag's value that is valid but cannot work (its port
taken, its data dir held by another stack), or that contradicts another setting, stays exit 5: the configuration's."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import typer

#: the flag of each setting a command's flag feeds, (section, key) → flag; another is ``--key`` with dashes
FLAGS: dict[tuple[str, str], str] = {("api", "port"): "--port", ("client", "api_url"): "--api",
                                     ("embedded", "tty_check"): "--tty-check"}


def flag_name(section: str, key: str) -> str:
    """The flag that feeds ``section.key``: ``--port`` for ``api.port``, ``--nats-url`` for ``nats.url``. Pure."""
    return FLAGS.get((section, key), f"--{(key if section != 'nats' else f'nats_{key}').replace('_', '-')}")


def check_flags(overrides: Mapping[str, Mapping[str, Any] | None]) -> None:
    """Refuse, as bad usage (exit 2, :class:`typer.BadParameter` naming the flag), the first value of ``overrides``
    (the flags' values by section and key, as :func:`gamead_cli.options.settings_from` takes them; None: not given)
    that its setting refuses on its own: a number past its bound in the one sentence of every bound (``--port must
    be 0 to 65,535, not 99,999``), else the setting's own words (``--nats-url: it names no host …``). A rule across
    settings is left to the configuration (exit 5). Pure but for importing the settings."""
    from pydantic import BaseModel, ValidationError

    from gamead_cli.bounds import OutOfRange
    from gamead_core.bound_text import is_bound_error
    from gamead_core.config import GameadSettings
    from gamead_core.config.fields import setting_range
    from gamead_core.config.refusal_words import refusal_words

    for section, values in overrides.items():
        model = GameadSettings.model_fields[section].annotation if section in GameadSettings.model_fields else None
        if not isinstance(model, type) or not issubclass(model, BaseModel):
            continue
        for key, value in (values or {}).items():
            if value is None:
                continue
            try:
                model.model_validate({key: value})
            except ValidationError as exc:
                error = next((e for e in exc.errors() if tuple(e["loc"])[:1] == (key,)), None)
                if error is None:  # a rule across this section's settings: the configuration's (exit 5)
                    continue
                flag, span = flag_name(section, key), setting_range(GameadSettings, (section, key))
                if span is not None and is_bound_error(dict(error), span):
                    raise OutOfRange(span, value, param_hint=flag) from None
                raise typer.BadParameter(refusal_words(dict(error), GameadSettings), param_hint=flag) from None


__all__ = ["FLAGS", "check_flags", "flag_name"]
