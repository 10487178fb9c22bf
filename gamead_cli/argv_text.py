"""A command-line value that is not text: under a locale whose encoding is not UTF-8, with Python's UTF-8 mode off
(``LC_ALL=C PYTHONUTF8=0``), ``--title "Drachen König"`` reaches Python as ``Drachen K\\udcc3\\udcb6nig``
(surrogateescape, PEP 383): bytes that are no characters, which no JSON body or URL can carry (attack30c F3/F8).
Such a value of a text flag is bad usage (exit 2) naming the flag; a path (``--config``, FILE) is fine as bytes.

:func:`unencodable_flag` (before the command runs, for options) and :func:`holder_of` (when encoding failed, for
anything else the command line gave). Pure but for loading the command named (an import), on this rare path."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import PurePath
from typing import Any

from gamead_core.safe_text import byte_escapes

#: a lone UTF-16 surrogate: what ``surrogateescape`` makes of a byte that is not text in the locale's encoding
_LONE = re.compile("[\ud800-\udfff]")
#: what the message tells an operator to do about it
ADVICE = "use a UTF-8 locale (e.g. LC_ALL=C.UTF-8) or PYTHONUTF8=1"


def has_lone_surrogate(text: str) -> bool:
    """True if ``text`` holds a character that is half a surrogate pair (no UTF-8 can carry it). Pure."""
    return _LONE.search(text) is not None


def _leaf(root: Any, args: list[str], load: Callable[[str], Any]) -> Any:
    """The command ``args`` name under ``root`` (its words, not the options'), loading a lazy one with ``load``
    (Typer's own Click or Click: told apart by shape, a group has ``commands``)."""
    command = root
    for word in args:
        if not isinstance(getattr(command, "commands", None), dict) or word.startswith("-"):
            continue
        sub = command.commands.get(word)
        if sub is None:
            break
        command = load(word) if command is root else sub
    return command


def _is_path(param: Any) -> bool:
    """True for an option whose value is a path (Typer's ``Path`` annotation, or Click's ``Path`` type)."""
    annotation = getattr(getattr(param, "type_descriptor", None), "annotation", None)
    if isinstance(annotation, type) and issubclass(annotation, PurePath):
        return True
    return type(getattr(param, "type", None)).__name__ == "Path"


def unencodable_flag(root: Any, args: list[str], load: Callable[[str], Any]) -> str | None:
    """The first option of ``args`` (the command line after ``gamead``) whose value is not text (a lone
    surrogate, :func:`has_lone_surrogate`) and whose type is not a path: its name as typed (``--title``); None if
    there is none. ``load(name)`` gives the click command of a subcommand of ``root`` (imported lazily). A
    positional argument is left alone here (a FILE may be any bytes)."""
    if not any(has_lone_surrogate(a) for a in args):
        return None
    command = _leaf(root, args, load)
    by_name = {name: param for param in command.params for name in (*param.opts, *param.secondary_opts)}
    for n, arg in enumerate(args):
        if not has_lone_surrogate(arg):
            continue
        name = arg.split("=", 1)[0] if arg.startswith("--") and "=" in arg else (args[n - 1] if n else "")
        if not name.startswith("-"):
            continue  # a positional argument
        param = by_name.get(name)
        if param is not None and (getattr(param, "is_flag", False) or getattr(param, "count", False)):
            continue  # `--wait FILE`: the value is a positional argument's
        if param is None or not _is_path(param):
            return name
    return None


def holder_of(args: list[str], text: str) -> str | None:
    """How a message names what on the command line ``args`` holds ``text`` (a character that could not be
    encoded): ``--title`` for an option's value, else the argument itself (``'K\\xc3nig'``); None if no
    argument holds it. Pure."""
    for n, arg in enumerate(args):
        if text and text in arg:
            if arg.startswith("--") and "=" in arg:
                return arg.split("=", 1)[0]
            if n and args[n - 1].startswith("-") and not arg.startswith("-"):
                return args[n - 1]
            return f"the argument {byte_escapes(repr(arg))}"  # its bytes that are no text as typed: \xc3
    return None
