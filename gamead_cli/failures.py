"""What a failed ``gamead`` command shows: one red ``error: …`` line on stderr, under ``-o json`` also one
``{"error": {"code", "message", "exitCode"}}`` document on stdout, and the exit code it returns
(:mod:`gamead_cli.exitcodes`); a bug's traceback only under ``--debug`` / ``GAMEAD_DEBUG=1``. The root group
(:mod:`gamead_cli.root`) calls these for whatever a command raises."""

from __future__ import annotations

import os
import re
import sys
import traceback
from typing import Any

from gamead_cli import exitcodes
from gamead_core.errors import GameadError

try:  # Typer ≥ 0.2x ships its own copy of Click; older ones use Click itself
    from typer._click import exceptions as click_errors
except ImportError:  # pragma: no cover - depends on the Typer version installed
    from click import exceptions as click_errors  # type: ignore[no-redef]


def error_line(message: Any) -> None:
    """:func:`gamead_cli.output.error_line`, imported when an error is shown: ``gamead --help`` and a
    command's own imports do not pay for rich's console at start-up."""
    from gamead_cli.output import error_line as show

    show(message)


DEBUG_ENV = "GAMEAD_DEBUG"
DEBUG_FLAG = {"debug": False}


def _debug_on() -> bool:
    return DEBUG_FLAG["debug"] or os.environ.get(DEBUG_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def error_kinds(name: str) -> tuple[type[BaseException], ...]:
    """Exception class ``name`` of Typer's Click and, if a command imported it, of Click itself."""
    modules = [click_errors, sys.modules.get("click.exceptions")]
    return tuple({kind for m in modules if (kind := getattr(m, name, None)) is not None})


#: pydantic's word before the text of a ``ValueError`` raised in a validator, which Typer ≥ 0.2x passes on in
#: a choice's refusal (``Invalid value for '--output' / '-o': Value error, 'yaml' is not one of …``, regress41 F3)
_VALIDATOR_PREFIX = re.compile(r"(^|: )Value error, ")


def usage_line(exc: Any) -> str:
    """The one line of a usage error (exit 2): Click's message without pydantic's ``Value error, `` and a pointer
    to the verb's ``--help``; a number past its range in the one sentence of :func:`gamead_cli.bounds.bound_line`
    (``--limit must be 1 to 500, not 0``), a value none of its choices in that of
    :func:`gamead_cli.choices.choice_line`, whoever checked it; any other refused value after the parameter's name
    alone (``ID: 'a b' is not a worker id …``), never Click's ``Invalid value for 'ID':``."""
    from gamead_cli.bounds import bound_line, param_name
    from gamead_cli.choices import choice_line

    ctx = getattr(exc, "ctx", None)
    path = ctx.command_path if ctx is not None else "gamead"
    param, hint = getattr(exc, "param", None), getattr(exc, "param_hint", None)
    named = isinstance(exc, error_kinds("BadParameter")) and not isinstance(exc, error_kinds("MissingParameter"))
    message = bound_line(exc) or choice_line(exc) or (  # Click's "Invalid value for 'ID': " said plainly (attack57b)
        f"{param_name(param, hint)}: {exc.message}" if named and (param or hint) else
        str(exc.message if param is None and hint is None and hasattr(exc, "message") else exc.format_message()))
    message = _VALIDATOR_PREFIX.sub(r"\1", message, count=1)
    return f"{message.rstrip('.')} (see `{path} --help`)"


def unexpected_failure(argv: list[str], exc: BaseException) -> int:
    """A bug: one red line (the traceback under ``--debug``), exit 1."""
    if _debug_on():
        traceback.print_exc()
    hint = "" if _debug_on() else f" (run with --debug or {DEBUG_ENV}=1 for the traceback)"
    return fail_with(argv, f"unexpected {type(exc).__name__}: {exc}{hint}", "internal_error", exitcodes.ERROR)


def fail_with(argv: list[str], message: str, code: str, exit_code: int, details: Any = None) -> int:
    """Show a failure that ends the command and return its exit code: one red ``error: …`` line on stderr and,
    under ``-o json`` (:func:`json_wanted`), one JSON document on stdout for scripts, ``{"error": {"code",
    "message", "exitCode"}}`` (plus ``details`` when the error has some), ``code`` being the API's stable code
    where the error came from the API or has one (``not_found``, ``api_unreachable``, ``validation_failed``…),
    else ``bad_usage``, ``interrupted``, ``failed`` or ``internal_error``. No second document when the command
    already printed its own (a submit's summary, a job's final state)."""
    error_line(message)
    if json_wanted(argv) and not _json_printed() and not getattr(sys.stdout, "broken", False):
        from gamead_cli.inputs import strict_dumps
        from gamead_core.redact import redact_text
        from gamead_core.safe_text import byte_escapes

        doc: dict[str, Any] = {"code": code, "message": " ".join(byte_escapes(redact_text(str(message))).split()),
                               "exitCode": exit_code}
        if details is not None:
            doc["details"] = details
        try:
            sys.stdout.write(strict_dumps({"error": doc}, indent=2, default=str) + "\n")
            sys.stdout.flush()
        except (GameadError, OSError):  # stdout itself failed: the red line above is all that can be said
            pass
    return exit_code


def json_wanted(argv: list[str]) -> bool:
    """True when the command line asks for ``-o json`` / ``--output json`` (``--output=json``, ``-ojson``, any
    case) before a ``--``. Read from the words themselves, so that an error raised while the options are parsed
    (before ``--output`` is) is a JSON document too. Pure."""
    words = iter(argv)
    for word in words:
        if word == "--":
            return False
        if word in ("-o", "--output"):
            value = next(words, "")
        elif word.startswith("--output="):
            value = word.split("=", 1)[1]
        elif word.startswith("-o") and not word.startswith("--"):
            value = word[2:]
        else:
            continue
        if value.lower() == "json":
            return True
    return False


def _json_printed() -> bool:
    """True once the command printed a JSON document on stdout (:func:`gamead_cli.output.print_json`)."""
    output = sys.modules.get("gamead_cli.output")
    return bool(output is not None and getattr(output, "JSON_PRINTED", {}).get("done"))
