"""The ``gamead`` command: one root app, one sub-app per noun, and the one place errors become exit codes.

Two jobs live here and nowhere else:

* **Fast start.** Every command is registered *lazily*: ``gamead --help`` lists them from the table below
  and imports none of them; a command's module (and with it FastAPI, nats-py, uvicorn, the Kubernetes
  client…) is imported only when that command runs or shows its own help. ``tests/cli`` pins which
  modules ``gamead --help`` and ``gamead ads list`` import.
* **The error boundary.** Whatever a command raises ends as one red ``error: …`` line on stderr and the
  exit code of :mod:`gamead_cli.exitcodes` (the README's table): a usage error (``click.UsageError``,
  ``typer.BadParameter``, from parsing or from a command body) → 2; a :class:`GameadError` → its code; an
  unexpected exception → 1, with the traceback only under ``--debug`` / ``GAMEAD_DEBUG=1``; output that cannot be
  written (stdout on a full disk, :class:`_GuardedStdout`) → 1 naming it, a closed pipe (``| head``) → quiet.
  Under ``-o json`` the same failure is also one ``{"error": {"code", "message", "exitCode"}}`` document on
  stdout (when stdout can take it). Output never
  crashes on an encoding that cannot show a character (``PYTHONIOENCODING=ascii``): it is replaced.
"""

from __future__ import annotations

import errno
import importlib
import io
import os
import sys
import traceback
from typing import Annotated, Any

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup

try:  # Typer ≥ 0.2x ships its own copy of Click; older ones use Click itself
    from typer._click import exceptions as click_errors
except ImportError:  # pragma: no cover - depends on the Typer version installed
    from click import exceptions as click_errors  # type: ignore[no-redef]

from gamead_cli import exitcodes
from gamead_core.errors import GameadError

#: name → (module, attribute, the one line ``gamead --help`` shows). The attribute is a command function
#: (its module docstring is its help) or a ``typer.Typer`` sub-app. Order = the order in ``--help``.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "up": ("gamead_cli.commands.up", "up",
           "The whole stack on this machine: embedded NATS, the API and autoscaled workers."),
    "submit": ("gamead_cli.commands.submit", "submit",
               "Submit game ads: one from a file, stdin or flags, or --count N generated ones."),
    "ads": ("gamead_cli.commands.ads", "app", "Look at submitted ads and their analyses."),
    "top": ("gamead_cli.commands.top", "top", "Live dashboard of the queue, the nodes and the dead letters."),
    "workers": ("gamead_cli.commands.workers", "workers", "The live API nodes and workers, with their health."),
    "scale": ("gamead_cli.commands.scale", "app", "The worker autoscaler: its decisions, a manual override."),
    "dlq": ("gamead_cli.commands.dlq", "app", "Inspect, replay, purge, export and import dead-lettered ads."),
    "doctor": ("gamead_cli.commands.doctor", "doctor",
               "Check every invariant (nothing lost, nothing misreported); --repair fixes what is safe."),
    "audit": ("gamead_cli.commands.audit", "audit", "The audit trail: who did what to the service, and how it went."),
    "config": ("gamead_cli.commands.config_cmd", "app", "The effective configuration and where it came from."),
    "serve": ("gamead_cli.commands.serve", "serve", "Run one stateless API node (FastAPI on uvicorn)."),
    "worker": ("gamead_cli.commands.worker", "worker", "Run one worker: pull ads by priority, analyse them."),
}


def _usage_name(self: TyperArgument) -> str:
    """An argument as the usage line shows it, as the help text names it: ``ID`` (required), ``[JOB]``
    (optional), ``[ID]...``; upper case. Typer 0.29 wrote ``{ID}``, ``{replicas}`` and ``[[JOB]]`` (ops13)."""
    name = self.display_name_raw if self.metavar is not None else self.display_name_raw.upper()
    if not self.required and not name.startswith("["):
        name = f"[{name}]"
    return name if self.nargs == 1 or name.endswith("...") else f"{name}..."


if hasattr(TyperArgument, "_usage_display_name"):  # the Typer versions that brace required arguments
    TyperArgument._usage_display_name = _usage_name  # type: ignore[method-assign]


def error_line(message: Any) -> None:
    """:func:`gamead_cli.output.error_line`, imported when an error is shown: ``gamead --help`` and a
    command's own imports do not pay for rich's console at start-up."""
    from gamead_cli.output import error_line as show

    show(message)


_DEBUG_ENV = "GAMEAD_DEBUG"
_state = {"debug": False}


def reflow_help(text: str | None) -> str | None:
    """A docstring as ``--help`` shows it: the lines of a paragraph joined into one, so the terminal wraps it
    at its width (Typer's rich help keeps a docstring's line breaks, and at 80 columns each hard-wrapped line
    then wrapped again, leaving a word or two alone on a line). A line that starts with white space (an
    example, a continued list) keeps its own line, as does the line after it; blank lines still separate
    paragraphs. Pure."""
    if not text:
        return text
    out: list[str] = []
    joinable = False  #: the last line out may take the next one
    for line in text.strip("\n").split("\n"):
        stripped = line.strip()
        if not stripped:
            out.append("")
            joinable = False
        elif line[:1].isspace():
            out.append(line.rstrip())
            joinable = False
        elif joinable:
            out[-1] = f"{out[-1]} {stripped}"
        else:
            out.append(stripped)
            joinable = True
    return "\n".join(out)


def _reflow_tree(command: Any) -> None:
    command.help = reflow_help(command.help)
    for sub in (getattr(command, "commands", None) or {}).values():
        _reflow_tree(sub)


def load_command(name: str) -> Any:
    """Import the module of command ``name`` and build its click command (a group for a sub-app). Shell
    completion (``--install-completion``/``--show-completion``) is an option of the root ``gamead`` alone, not
    repeated in every verb's ``--help``."""
    module_name, attr, _ = COMMANDS[name]
    module = importlib.import_module(module_name)
    target = getattr(module, attr)
    if isinstance(target, typer.Typer):
        command: Any = typer.main.get_group(target)
    else:
        single = typer.Typer(rich_markup_mode="rich", pretty_exceptions_enable=False, add_completion=False)
        single.command(name, help=module.__doc__)(target)
        command = typer.main.get_command(single)
    command.name = name
    _reflow_tree(command)
    return command


class _LazyCommand(TyperCommand):
    """Stands in for a command in ``gamead --help`` (name and one line) until the command is used."""

    def __init__(self, name: str, short_help: str) -> None:
        super().__init__(name, short_help=short_help, help=short_help, rich_markup_mode="rich")


def _debug_on() -> bool:
    return _state["debug"] or os.environ.get(_DEBUG_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def _safe_streams() -> None:
    """Never crash on a character the terminal's encoding cannot show: replace it instead."""
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper) and stream.errors == "strict":
            try:
                stream.reconfigure(errors="replace")
            except (ValueError, io.UnsupportedOperation):  # pragma: no cover - a detached stream
                pass


def _kinds(name: str) -> tuple[type[BaseException], ...]:
    """Exception class ``name`` of Typer's Click and, if a command imported it, of Click itself."""
    modules = [click_errors, sys.modules.get("click.exceptions")]
    return tuple({kind for m in modules if (kind := getattr(m, name, None)) is not None})


def _usage_line(exc: Any) -> str:
    ctx = getattr(exc, "ctx", None)
    path = ctx.command_path if ctx is not None else "gamead"
    bare = getattr(exc, "param", None) is None and getattr(exc, "param_hint", None) is None
    message = str(exc.message if bare and hasattr(exc, "message") else exc.format_message())
    return f"{message.rstrip('.')} (see `{path} --help`)"


class _GuardedGroup(TyperGroup):
    """The root group: lazy subcommands, and every failure turned into one red line and an exit code."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        for name, (_, _, short) in COMMANDS.items():
            self.commands.setdefault(name, _LazyCommand(name, short))

    def list_commands(self, ctx: Any) -> list[str]:
        return list(self.commands)

    def format_help(self, ctx: Any, formatter: Any) -> None:
        """``gamead --help`` with Click's own formatter: Typer's rich one imports rich's markdown, syntax
        (pygments) and traceback modules, ~110 ms of the ~250 ms the page took. A subcommand's ``--help``
        keeps Typer's rich page (its module is loaded anyway)."""
        super(TyperGroup, self).format_help(ctx, formatter)

    def resolve_command(
        self, ctx: Any, args: list[str]
    ) -> tuple[str | None, Any, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        if isinstance(command, _LazyCommand) and name is not None:
            command = self.commands[name] = load_command(name)
        return name, command, rest

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            error_line("interrupted")
            raise typer.Exit(exitcodes.INTERRUPTED) from None

    def main(  # type: ignore[override]
        self,
        args: Any = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        _state["debug"] = False
        _safe_streams()
        sys.exit(self._run(args, prog_name or "gamead", complete_var, **extra))

    def _run(self, args: Any, prog_name: str, complete_var: str | None, **extra: Any) -> int:
        argv = list(sys.argv[1:] if args is None else args)
        if (output := sys.modules.get("gamead_cli.output")) is not None:  # a runner calling main() again
            output.JSON_PRINTED["done"] = False
        real = sys.stdout
        sys.stdout = guard = _GuardedStdout(real)  # type: ignore[assignment]
        try:
            return self._guarded(argv, args, prog_name, complete_var, **extra)
        finally:
            if sys.stdout is guard:
                sys.stdout = real
            if guard.broken:  # nothing more may reach it: the interpreter's last flush would fail (exit 120)
                _silence_stdout(real)

    def _guarded(self, argv: list[str], args: Any, prog_name: str, complete_var: str | None, **extra: Any) -> int:
        try:
            result = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
            sys.stdout.flush()  # the output is written before the exit code says it was
        except BrokenPipeError:  # stdout's reader went away (`| head`): quiet, as Unix tools are
            _stdout_broken()
            return exitcodes.ERROR
        except _kinds("UsageError") as exc:
            if type(exc).__name__ == "NoArgsIsHelpError":  # `gamead` alone, `gamead dlq`: show the help
                exc.show()  # type: ignore[attr-defined]
                return exitcodes.USAGE
            return _fail(argv, _usage_line(exc), "bad_usage", exitcodes.USAGE)
        except _kinds("ClickException") as exc:  # e.g. a FileError of a file parameter
            code = getattr(exc, "exit_code", exitcodes.ERROR) or exitcodes.ERROR
            kind = "bad_usage" if code == exitcodes.USAGE else "failed"
            return _fail(argv, exc.format_message(), kind, code)  # type: ignore[attr-defined]
        except (typer.Abort, *_kinds("Abort")):  # Ctrl-C / EOF at a confirmation prompt
            return _fail(argv, "aborted", "interrupted", exitcodes.INTERRUPTED)
        except GameadError as exc:
            return _fail(argv, exc.message or type(exc).__name__, exc.code, exitcodes.exit_code_for(exc),
                         exc.details)
        except KeyboardInterrupt:
            return _fail(argv, "interrupted", "interrupted", exitcodes.INTERRUPTED)
        except OSError as exc:
            if exc.errno != errno.EPIPE:
                return _unexpected(argv, exc)
            _stdout_broken()  # a closed pipe found by a write of the command's own: quiet too
            return exitcodes.ERROR
        except Exception as exc:  # noqa: BLE001 - the last line of defence: one red line, not a traceback
            return _unexpected(argv, exc)
        return result if isinstance(result, int) and not isinstance(result, bool) else exitcodes.OK


def _unexpected(argv: list[str], exc: BaseException) -> int:
    """A bug: one red line (the traceback under ``--debug``), exit 1."""
    if _debug_on():
        traceback.print_exc()
    hint = "" if _debug_on() else f" (run with --debug or {_DEBUG_ENV}=1 for the traceback)"
    return _fail(argv, f"unexpected {type(exc).__name__}: {exc}{hint}", "internal_error", exitcodes.ERROR)


def _stdout_where(stream: Any) -> str:
    """``stream`` (stdout) as the operator knows it: ``stdout (/dev/full)`` where Linux tells which file its
    descriptor is, else ``stdout``."""
    try:
        target = os.readlink(f"/proc/self/fd/{stream.fileno()}")
    except (OSError, ValueError, AttributeError):  # no descriptor (a test runner's buffer), or not Linux
        return "stdout"
    return f"stdout ({target})" if target.startswith("/") else "stdout"


class _GuardedStdout:
    """``sys.stdout`` while a command runs: a write or flush that fails (a full disk, ``EIO``) raises
    :class:`gamead_cli.exitcodes.OutputFailed` naming stdout, so the command ends with one red line and exit 1
    instead of exit 0 (or "unexpected OSError"); a closed pipe (``EPIPE``) is raised as it is (quiet). Everything
    else is the real stream's."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self.broken = False

    def _guard(self, call: Any, *args: Any) -> Any:
        try:
            return call(*args)
        except BrokenPipeError:
            self.broken = True
            raise
        except OSError as exc:
            self.broken = True
            raise exitcodes.OutputFailed(
                f"cannot write the output to {_stdout_where(self._stream)}: {exc.strerror or exc}") from exc

    def write(self, text: str) -> int:
        return self._guard(self._stream.write, text)  # type: ignore[no-any-return]

    def writelines(self, lines: Any) -> None:
        self._guard(self._stream.writelines, lines)

    def flush(self) -> None:
        if not self.broken:
            self._guard(self._stream.flush)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _stdout_broken() -> None:
    if isinstance(sys.stdout, _GuardedStdout):
        sys.stdout.broken = True


def _silence_stdout(stream: Any) -> None:
    """Point fd 1 at ``/dev/null``: what is left in ``stream``'s buffer is dropped there, not an "Exception
    ignored" at exit (Python's own advice for a closed pipe)."""
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, stream.fileno())
        os.close(null)
    except (OSError, ValueError, AttributeError):  # pragma: no cover - a stream without a descriptor
        pass


def _fail(argv: list[str], message: str, code: str, exit_code: int, details: Any = None) -> int:
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

        doc: dict[str, Any] = {"code": code, "message": " ".join(redact_text(str(message)).split()),
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


app = typer.Typer(
    cls=_GuardedGroup,
    name="gamead",
    help="Control plane of the game ad analysis service: API, workers, queue, dashboard.\n\n"
    "Example: gamead up, then in another terminal: gamead submit --title 'Sky Saga' --genre RPG --wait",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,  # --install-completion / --show-completion: on the root command only
    context_settings={"help_option_names": ["-h", "--help"]},
    rich_markup_mode="rich",
)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            number = version("gamead")
        except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
            number = "unknown"
        typer.echo(f"gamead {number}")
        raise typer.Exit(exitcodes.OK)


@app.callback()
def root(
    version: Annotated[
        bool, typer.Option("--version", is_eager=True, callback=_version, help="Print the version and exit.")
    ] = False,
    debug: Annotated[
        bool, typer.Option("--debug", help=f"Show the traceback of an unexpected error (or env {_DEBUG_ENV}=1).")
    ] = False,
) -> None:
    """Control plane of the game ad analysis service: API, workers, queue, dashboard."""
    _state["debug"] = debug
    if os.environ.get("GAMEAD_PARENT_PID"):  # started by `gamead up`: stop if it dies (gamead_core.proc)
        from gamead_core.proc import watch_parent

        watch_parent()


def main() -> None:
    """Console-script entry point."""
    app()
