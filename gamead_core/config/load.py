"""Building the settings: find the config file, check it, let pydantic-settings merge it with env and flags."""

from __future__ import annotations

import difflib
import functools
import json
import os
import re
import stat
from enum import Enum
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, SecretStr, ValidationError
from pydantic_settings import SettingsError, YamlConfigSettingsSource

from gamead_core.bound_text import is_bound_error
from gamead_core.config.env_names import refuse_repeated_keys, refuse_unknown_variables
from gamead_core.config.fields import setting_range
from gamead_core.config.origin import file_lines, origin, written
from gamead_core.config.refusal_words import refusal_words
from gamead_core.config.yaml_nodes import Part, compose, count_nodes, key_part, misread_number, walk
from gamead_core.config.settings import _YAML_SOURCE, GameadSettings
from gamead_core.errors import ConfigError
from gamead_core.redact import redact_url

CONFIG_ENV = "GAMEAD_CONFIG"
DEFAULT_CONFIG_FILE = "config.yaml"
#: Largest config file read (bytes): a config is a few KiB; `--config /dev/zero` must not fill memory.
MAX_CONFIG_BYTES = 1024 * 1024
#: Most YAML nodes (keys, values, list items, at any depth) a config file may hold: a config holds hundreds, a long
#: token list a few thousand; each one costs every reader of the file CPU.
MAX_CONFIG_NODES = 50_000


def config_path(explicit: str | Path | None = None) -> Path | None:
    """The config file in force: ``--config``, else ``$GAMEAD_CONFIG``, else ``./config.yaml`` if any entry has that
    name (a directory, FIFO or dangling symlink too: :func:`check_file` refuses it; attack57: skipped before)."""
    if explicit:
        return Path(explicit)
    if env := os.environ.get(CONFIG_ENV):
        return Path(env)
    return Path(DEFAULT_CONFIG_FILE) if os.path.lexists(DEFAULT_CONFIG_FILE) else None


def check_file(path: str | Path, *, what: str = "config file", limit: int = MAX_CONFIG_BYTES) -> None:
    """Refuse a file an operator named that a library would read forever or skip without a word: it must be
    a regular file of at most ``limit`` bytes (not ``/dev/zero``, a FIFO, a directory or a missing path).
    Call it before handing ``path`` to the library that reads it. Raises :class:`ConfigError` naming
    ``what`` and the file."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror or exc}") from exc
    if not stat.S_ISREG(st.st_mode):
        raise ConfigError(f"{what} {path} is not a regular file: is it the right file?")
    if st.st_size > limit:
        raise ConfigError(f"{what} {path} is larger than {limit // 1024} KiB: is it the right file?")


#: unknown top-level keys named in the error, and the characters shown of each (``--config /etc/shadow``
#: printed every line of the file into the error, and so into logs)
_SHOWN_KEYS, _SHOWN_KEY_CHARS = 3, 40
_SHOWN_PROBLEMS = 10  # settings named in one refusal; the rest are counted


def _clipped(text: str) -> str:
    """``text`` cut to ``_SHOWN_KEY_CHARS`` characters (a key named in an error: never a whole line of a file)."""
    return text if len(text) <= _SHOWN_KEY_CHARS else text[: _SHOWN_KEY_CHARS - 1] + "…"


def duplicate_key(text: str) -> tuple[str, int, int] | None:
    """The first key written twice in one mapping of the YAML ``text``, at any depth: ``(dotted key, line of
    its first use, line of the repeat)``, lines counted from 1; None if there is none (or ``text`` is not
    YAML: reading it says why). PyYAML keeps the last of two equal keys without a word (YAML 1.2 says keys
    are unique), so an operator's second ``queue:`` section would silently replace the first. Walks the
    composed nodes, not the values: aliases are visited once, so a small file cannot make it work long."""
    try:
        root = compose(text)
    except (yaml.YAMLError, RecursionError):
        return None
    return _repeated_key(root)


def _repeated_key(root: yaml.Node | None) -> tuple[str, int, int] | None:
    """:func:`duplicate_key` of a composed document."""
    for where, node in walk(root):
        if isinstance(node, yaml.MappingNode):
            first: dict[tuple[str, str], int] = {}
            for key, _ in node.value:
                ident = (key.tag, str(key.value)) if isinstance(key, yaml.ScalarNode) else ("", str(id(key)))
                if ident in first and key_part(key) != "<<":
                    return _dotted((*where, key_part(key))), first[ident], key.start_mark.line + 1
                first.setdefault(ident, key.start_mark.line + 1)
    return None


def _dotted(path: tuple[Part, ...]) -> str:
    """``queue.levels[2].name``: a node's path as an error names it (each key clipped)."""
    return "".join(f"[{p}]" if isinstance(p, int) else f"{'.' if i else ''}{_clipped(p)}" for i, p in enumerate(path))


def _check_shape(path: Path) -> None:
    """Refuse a config file holding more than ``MAX_CONFIG_NODES`` YAML nodes, or a key written twice in one mapping
    (:func:`duplicate_key`). The count comes first: every later reader costs CPU per node (400,000 list items in
    800 KB kept ``gamead config show`` busy past 2 minutes and 1 GB)."""
    try:
        text = path.read_text(encoding="utf-8")
        if count_nodes(text, MAX_CONFIG_NODES) > MAX_CONFIG_NODES:
            raise ConfigError(f"config file {path} holds more than {MAX_CONFIG_NODES:,} YAML nodes (keys, values, "
                              "list items): is it the right file?")
        root = compose(text)
    except (OSError, UnicodeDecodeError, yaml.YAMLError, RecursionError):
        return  # the YAML source reads it next and says why it cannot
    if (dup := _repeated_key(root)) is not None:
        key, line, again = dup
        raise ConfigError(f"config file {path}: key {key!r} is written twice (line {line} and line {again}); "
                          "keep one (YAML keys are unique; PyYAML would keep the last without a word)")
    if (octal := misread_number(root)) is not None:  # YAML 1.1's octal (030 would run as 24), 5,000 digits
        raise ConfigError(f"config file {path}: {_dotted(octal[0])} (line {octal[1]}): {octal[2]}")


def _yaml_source(path: Path) -> YamlConfigSettingsSource:
    """pydantic-settings' YAML source over ``path``, read now (after :func:`check_file`), so that every
    problem of the file is one :class:`ConfigError` naming it: unreadable, not UTF-8, not YAML, nested too
    deeply, not a mapping, a key written twice in one mapping (at any depth), or a top-level key that is no
    section (a typo would otherwise be ignored;
    unknown keys inside a section are refused by :class:`~gamead_core.config.section.Section`)."""
    check_file(path)
    _check_shape(path)
    try:
        source = YamlConfigSettingsSource(GameadSettings, yaml_file=path, yaml_file_encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {path} is not UTF-8 text: is it the right file?") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {' '.join(str(exc).split())}") from exc
    except RecursionError as exc:
        raise ConfigError(f"config file {path} is nested too deeply") from exc
    except (TypeError, ValueError, AttributeError) as exc:  # the library merges the top level with dict.update
        raise ConfigError(f"config file {path} must hold a mapping of sections at the top level") from exc
    unknown = sorted(str(k) for k in source.yaml_data if k not in GameadSettings.model_fields)
    if unknown:
        hints = []
        for key in unknown[:_SHOWN_KEYS]:  # the first few, each cut short: the wrong file's lines are no error text
            close = difflib.get_close_matches(key, list(GameadSettings.model_fields), n=1)
            hints.append(f"{_clipped(key)!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        more = f" and {len(unknown) - _SHOWN_KEYS} more" if len(unknown) > _SHOWN_KEYS else ""
        raise ConfigError(
            f"invalid configuration (from {path}): unknown top-level key {', '.join(hints)}{more}; "
            f"known sections: {', '.join(GameadSettings.model_fields)}")
    return source


def _bad_env_json(exc: SettingsError | RecursionError) -> ConfigError:
    """A ``GAMEAD_*`` variable that should hold JSON (a list or a section) and does not (or too deep: attack36 F5)."""
    field = str(exc).split('"')[1] if str(exc).count('"') >= 2 else ""
    prefix = f"GAMEAD_{field.upper()}"
    candidates = sorted(k for k in os.environ if k == prefix or k.startswith(prefix + ("__" if field else "")))

    def parses(name: str) -> bool:
        try:
            json.loads(os.environ[name])
        except (ValueError, RecursionError) as err:  # sought too deep: GAMEAD_API_URL, no JSON, is no fault
            return not field and not isinstance(err, RecursionError)
        return True

    named = [k for k in candidates if not parses(k)] or (candidates if field else [])
    what = (", ".join(named) if named else f"a GAMEAD_* variable of section {field!r}") + (not field) * " (too deep)"
    # GAMEAD_API=http://… meant for the CLI's API address: the variable a section's own name shadows
    meant = sorted(alias for alias in _ENV_ALIASES.values() if prefix in named and alias.startswith(prefix + "_"))
    hint = f"; {prefix} sets the whole {field!r} section: did you mean {' or '.join(meant)}?" if meant else ""
    return ConfigError(
        f"invalid configuration: {what} is not valid JSON (a list or section in an env var is written as "
        f"JSON, e.g. GAMEAD_AUTH__TOKENS='[{{\"name\": \"ci\", \"token\": \"…\", \"role\": \"operator\"}}]'){hint}"
    )


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


#: the variables that are no ``GAMEAD_<SECTION>__<KEY>`` but that operators expect to work, by the key they set
_ENV_ALIASES = {("client", "api_url"): "GAMEAD_API_URL", ("client", "token"): "GAMEAD_TOKEN"}


def _env_overrides() -> dict[str, Any]:
    """Env vars that are not ``GAMEAD_<SECTION>__<KEY>`` but that operators expect to work."""
    out: dict[str, Any] = {}
    for (section, key), name in _ENV_ALIASES.items():
        if value := os.environ.get(name):
            out.setdefault(section, {})[key] = value
    return out


_DOTTED = re.compile(r"\b([a-z_]+)\.([a-z_]+)\b")


def _named_in(loc: tuple[str | int, ...], message: str) -> list[tuple[str, ...]]:
    """The settings a rule across settings names in its ``message``, when it is on the whole configuration
    (``loc`` empty: ``records.completed_max_age … queue.duplicate_window``) or on one section (``("autoscaler",)``:
    ``min_replicas … max_replicas``); [] for an error on one setting."""
    fields = GameadSettings.model_fields
    if len(loc) > 1 or (loc and loc[0] not in fields):
        return []
    named = {(m.group(1), m.group(2)): None for m in _DOTTED.finditer(message) if m.group(1) in fields}
    if loc:
        section = fields[str(loc[0])].annotation
        keys = section.model_fields if isinstance(section, type) and issubclass(section, BaseModel) else {}
        named.update({(str(loc[0]), w): None for w in re.findall(r"[a-z_]+", message) if w in keys})
    return list(named)


def _refusal(exc: ValidationError, init: dict[str, Any], path: Path | None,
             source: YamlConfigSettingsSource | None) -> ConfigError:
    """One line naming the bad settings and where each value was written (the ``GAMEAD_*`` variable and its
    value, the config file and line, or a flag), so the operator knows which one to fix: the first
    ``_SHOWN_PROBLEMS`` of them, then how many more. The file's key lines are read once for all of them (a
    file of 5,000 bad list items took minutes when each error composed the whole file again)."""
    @functools.cache
    def lines() -> dict[tuple[str | int, ...], int]:
        return file_lines(path) if path is not None else {}

    def where(loc: tuple[str | int, ...]) -> str:
        return origin(GameadSettings, loc, flags=init, env_flags=_ENV_ALIASES, file=path,
                      file_data=source.yaml_data if source is not None else None, lines=lines)

    problems, placed, errors = [], False, exc.errors()
    for err in errors[:_SHOWN_PROBLEMS]:
        loc = tuple(err["loc"])
        named, head, msg = _named_in(loc, err["msg"]), ".".join(str(p) for p in loc), refusal_words(err, GameadSettings)
        if named:  # a rule across settings: where each one it names was set, after the rule
            found = "; ".join(f"{'.'.join(key)} from {w}" for key in named if (w := where(key)))
            text = (f"{head}: {msg}" if head else msg) + (f" ({found})" if found else "")
        else:  # a number past its bound in the one sentence of gamead_core.bound_text (range46)
            found, span = where(loc) if loc else "", setting_range(GameadSettings, loc)
            span = span if is_bound_error(err, span) else None
            label, data = f"{head}{f' ({found})' if found else ''}", source.yaml_data if source else None
            text = (span.refusal(label, written(loc, err["input"], flags=init, file_data=data)) if span  # as typed
                    else f"{label}: {msg}" if head else msg)
        problems.append(text)
        placed = placed or bool(found)
    unplaced = f" (from {path})" if path and not placed else ""
    more = f"; and {len(errors) - _SHOWN_PROBLEMS} more" if len(errors) > _SHOWN_PROBLEMS else ""
    return ConfigError(f"invalid configuration{unplaced}: {'; '.join(problems)}{more}")


def load_settings(config: str | Path | None = None, **overrides: Any) -> GameadSettings:
    """Build the settings: defaults < YAML file < env < ``overrides`` (CLI flags, nested dicts).

    ``overrides`` values of ``None`` are ignored so CLI options can pass their unset defaults through.
    Raises :class:`ConfigError` with every problem named by its dotted key and where its value came from
    (the ``GAMEAD_*`` variable, the config file and line, or a flag).
    """
    refuse_unknown_variables(os.environ, GameadSettings)  # a mistyped GAMEAD_* section was silently ignored
    refuse_repeated_keys(os.environ)  # so was the first of a key written twice in a section's JSON
    path = config_path(config)
    init = _deep_merge(_env_overrides(), _drop_none(overrides))
    source = _yaml_source(path) if path else None
    token = _YAML_SOURCE.set(source)
    try:
        # Flags (init) win over env; env wins over YAML. GAMEAD_API_URL / GAMEAD_TOKEN travel with the
        # flags, below them (_env_overrides).
        settings = GameadSettings(**init) if init else GameadSettings()
    except ValidationError as exc:
        raise _refusal(exc, init, path, source) from exc
    except (SettingsError, RecursionError) as exc:  # RecursionError: a GAMEAD_* variable's JSON nested too deeply
        raise _bad_env_json(exc) from exc
    finally:
        _YAML_SOURCE.reset(token)
    return settings


def _drop_none(values: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            nested = _drop_none(value)
            if nested:
                out[key] = nested
        elif value is not None:
            out[key] = value
    return out


def masked_dump(settings: GameadSettings) -> dict[str, Any]:
    """The effective configuration as plain data with every secret replaced by ``'********'`` and the
    password or token in any URL's user-info by ``***`` (``nats://user:***@host``)."""

    def mask(value: Any) -> Any:
        if isinstance(value, SecretStr):
            return "********"
        if isinstance(value, str) and "://" in value:
            return redact_url(value)
        if isinstance(value, BaseModel):
            return {k: mask(getattr(value, k)) for k in type(value).model_fields}
        if isinstance(value, dict):
            return {k: mask(v) for k, v in value.items()}
        if isinstance(value, list):
            return [mask(v) for v in value]
        if isinstance(value, Path):
            return str(value)
        return value

    return mask(settings)


def _plain(value: Any) -> Any:
    """``value`` as YAML-ready data, secrets revealed (:func:`differing_dump`'s file is owner-only)."""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, BaseModel):
        return {k: _plain(getattr(value, k)) for k in type(value).model_fields}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    return value


def differing_dump(settings: GameadSettings) -> dict[str, Any]:
    """The settings of ``settings`` that differ from the defaults, whatever set them (the config file,
    ``GAMEAD_*``, flags), as nested plain data a config file can hold: loaded as one (:func:`load_settings`),
    with no ``GAMEAD_*`` set, it gives back the same settings. Secrets are revealed (``auth.tokens``, a password
    in ``nats.url``): whoever writes it must keep it owner-only. Pure."""
    def differ(ours: BaseModel, default: BaseModel) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in type(ours).model_fields:
            value, usual = getattr(ours, name), getattr(default, name)
            if isinstance(value, BaseModel) and type(value) is type(usual):  # a section: only what differs in it
                if inner := differ(value, usual):
                    out[name] = inner
            elif _plain(value) != _plain(usual):  # a whole value (a list, a dict, a secret): as it is
                out[name] = _plain(value)
        return out

    return differ(settings, GameadSettings.model_construct())
