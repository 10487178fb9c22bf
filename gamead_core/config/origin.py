"""Where a bad setting came from: the ``GAMEAD_*`` variable, the config file's key (and line) or a flag.

A refusal that named only ``queue.partitions`` left an operator who had set ``GAMEAD_QUEUE__PARTITIONS=abc``
(or who had a config file, or both) to guess which one to fix. :func:`origin` follows the layering of
:func:`~gamead_core.config.load.load_settings` (flags > ``GAMEAD_*`` > the file) to the one value in force, and
says where it was written: ``GAMEAD_QUEUE__PARTITIONS=abc`` (secrets are never shown: only the variable's name),
``config file /etc/gamead.yaml, line 3`` (the key is the setting's dotted name), or a command-line option.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, SecretStr

from gamead_core.config.fields import field_at
from gamead_core.config.section import leaf_types
from gamead_core.config.yaml_nodes import compose, walk
from gamead_core.redact import redact_url

ENV_PREFIX, ENV_DELIMITER = "GAMEAD_", "__"
#: characters of a value shown in an error (an operator's own text, cut short: never a whole file or blob)
_SHOWN_CHARS = 40
_SECRET_WORDS = ("token", "password", "secret", "key")


def _walk(data: Any, loc: Sequence[str | int]) -> tuple[bool, Any]:
    """``(found, value)`` of ``loc`` in nested dicts / lists."""
    for part in loc:
        if (isinstance(data, Mapping) and part in data) or (
                isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data)):
            data = data[part]
        else:
            return False, None
    return True, data


def _shows_value(model: type[BaseModel], loc: Sequence[str | int]) -> bool:
    """True if the value at ``loc`` may be printed: a plain setting, not a secret nor a section."""
    annotation = field_at(model, loc)[1]
    if annotation is None or any(w in str(p).lower() for p in loc for w in _SECRET_WORDS):
        return False
    return not any(k is SecretStr or (isinstance(k, type) and issubclass(k, (BaseModel, list, dict)))
                   for k in leaf_types(annotation))


def _shown(text: str) -> str:
    text = redact_url(text) if "://" in text else text
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 1] + "…"


def _env_var(loc: Sequence[str | int], environ: Mapping[str, str]) -> str | None:
    """The ``GAMEAD_*`` variable (as spelled in ``environ``; names are case-insensitive) holding ``loc``: the
    most specific one, ``GAMEAD_QUEUE__PARTITIONS`` before a whole section in JSON, ``GAMEAD_QUEUE``."""
    names = [str(p) for p in loc]
    upper = {k.upper(): k for k in environ if k.upper().startswith(ENV_PREFIX)}
    for end in range(len(names), 0, -1):
        if all(isinstance(p, str) for p in loc[:end]):
            spelled = upper.get(ENV_PREFIX + ENV_DELIMITER.join(names[:end]).upper())
            if spelled is not None:
                return spelled
    return None


def file_lines(path: Path) -> dict[tuple[str | int, ...], int]:
    """Key path → line (from 1) of every key in the YAML file ``path``; empty if it cannot be read."""
    try:
        root = compose(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError, RecursionError):
        return {}
    out: dict[tuple[str | int, ...], int] = {}
    for where, node in walk(root):
        if isinstance(node, yaml.MappingNode):
            for key, _ in node.value:
                if isinstance(key, yaml.ScalarNode):
                    out.setdefault((*where, str(key.value)), key.start_mark.line + 1)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                out.setdefault((*where, i), item.start_mark.line + 1)
    return out


def origin(model: type[BaseModel], loc: Sequence[str | int], *, flags: Mapping[str, Any],
           env_flags: Mapping[tuple[str, ...], str], file: Path | None, file_data: Mapping[str, Any] | None,
           environ: Mapping[str, str] | None = None,
           lines: Callable[[], Mapping[tuple[str | int, ...], int]] | None = None) -> str:
    """Where the value at ``loc`` (a pydantic error's location) was written, as a phrase for the error line;
    "" when it is none of them (a default, or a rule across several settings).

    ``flags``: the values given as flags (nested dicts); ``env_flags``: which of them came from a variable
    that is no ``GAMEAD_<SECTION>__<KEY>`` (``("client", "api_url")`` → ``GAMEAD_API_URL``); ``file`` and
    ``file_data``: the config file and what it holds; ``environ`` (default ``os.environ``); ``lines``: gives
    :func:`file_lines` of ``file`` (default: reads the file again), so that a caller placing many errors reads
    the file once, not once per error (each read composes the whole YAML file)."""
    environ = os.environ if environ is None else environ
    loc = tuple(loc)
    found, value = _walk(flags, loc)
    if found:
        by_env = next((name for key, name in env_flags.items() if loc[: len(key)] == key), None)
        if by_env is not None and environ.get(by_env) != str(value):  # a flag given too wins over the variable
            by_env = None
        if by_env is None:
            return "a command-line option"
        return f"{by_env}={_shown(str(value))}" if _shows_value(model, loc) else by_env
    if (var := _env_var(loc, environ)) is not None:
        exact = var.upper() == ENV_PREFIX + ENV_DELIMITER.join(str(p) for p in loc).upper()
        if exact and _shows_value(model, loc):
            return f"{var}={_shown(environ[var])}"
        return var
    if file is not None and file_data is not None and _walk(file_data, loc)[0]:
        line = (lines() if lines is not None else file_lines(file)).get(loc)
        return f"config file {file}" + (f", line {line}" if line else "")
    return ""


def written(loc: Sequence[str | int], given: Any, *, flags: Mapping[str, Any], file_data: Mapping[str, Any] | None,
            environ: Mapping[str, str] | None = None) -> Any:
    """The value at ``loc`` as the operator wrote it, following :func:`origin`'s layering (a flag's value, a
    ``GAMEAD_*`` variable's text or a key of its section's JSON, the config file's value), for a refusal to echo:
    ``99999999999y``, not the seconds it was read as (words55 F3); ``given`` (pydantic's input) when none of
    them holds it. Pure but for reading ``environ`` (default ``os.environ``)."""
    environ = os.environ if environ is None else environ
    loc = tuple(loc)
    found, value = _walk(flags, loc)
    if found:
        return value
    if (var := _env_var(loc, environ)) is not None:
        if var.upper() == ENV_PREFIX + ENV_DELIMITER.join(str(p) for p in loc).upper():
            return environ[var]
        try:  # a section's JSON (GAMEAD_DLQ='{"max_age": "8d"}'): its key, else pydantic's input
            found, value = _walk(json.loads(environ[var]), loc[len(var[len(ENV_PREFIX):].split(ENV_DELIMITER)):])
        except (ValueError, RecursionError):
            return given
        return value if found else given
    found, value = _walk(file_data or {}, loc)
    return value if found else given


__all__ = ["ENV_DELIMITER", "ENV_PREFIX", "file_lines", "origin", "written"]
