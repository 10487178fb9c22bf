"""The ``gamead`` command: one root app, one sub-app per noun, and the one place errors become exit codes (its
entry point, which handles SIGTERM and SIGHUP before importing this, is :mod:`gamead_cli.main`).

Two jobs live here and nowhere else (the root group, :class:`_GuardedGroup`, drawing on three modules):

* **Fast start.** Every command is registered *lazily*: ``gamead --help`` lists them from the table of
  :mod:`gamead_cli.command_table` and imports none of them; a command's module (and with it FastAPI, nats-py,
  uvicorn, the Kubernetes client…) is imported only when that command runs or shows its own help. ``tests/cli``
  pins which modules ``gamead --help`` and ``gamead ads list`` import.
* **The error boundary.** Whatever a command raises ends as one red ``error: …`` line on stderr and the
  exit code of :mod:`gamead_cli.exitcodes` (the README's table): a usage error (``click.UsageError``,
  ``typer.BadParameter``, from parsing or from a command body) → 2; a :class:`GameadError` → its code; an
  unexpected exception → 1, with the traceback only under ``--debug`` / ``GAMEAD_DEBUG=1``; output that cannot be
  written (stdout on a full disk, :mod:`gamead_cli.stdout_guard`) → 1 naming it, a closed pipe (``| head``) → quiet.
  A command-line value that is not text in the locale's encoding (:mod:`gamead_cli.argv_text`) → 2 naming it.
  Under ``-o json`` the same failure is also one ``{"error": {"code", "message", "exitCode"}}`` document on
  stdout (when stdout can take it): :mod:`gamead_cli.failures`. Output never
  crashes on an encoding that cannot show a character (``PYTHONIOENCODING=ascii``): it is replaced.
"""

from __future__ import annotations

import errno
import os
import sys
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from gamead_cli import exitcodes, first_signals
from gamead_cli.argv_text import ADVICE, holder_of, unencodable_flag
from gamead_cli.command_table import COMMANDS, LazyCommand, load_command
from gamead_cli.failures import (
    DEBUG_ENV,
    DEBUG_FLAG,
    error_kinds,
    error_line,
    fail_with,
    unexpected_failure,
    usage_line,
)
from gamead_cli.stdout_guard import DONE, GuardedStdout, reader_gone, safe_streams, say_what_was_done, silence_stdout
from gamead_core.errors import GameadError


class _GuardedGroup(TyperGroup):
    """The root group: lazy subcommands, and every failure turned into one red line and an exit code."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.argv: list[str] = []  #: the words of the command line being run (after ``gamead``)
        for name, (_, _, short) in COMMANDS.items():
            self.commands.setdefault(name, LazyCommand(name, short))

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
        if isinstance(command, LazyCommand) and name is not None:
            command = self.commands[name] = load_command(name)
        return name, command, rest

    def make_context(self, *args: Any, **kw: Any) -> Any:
        """Click's, a Ctrl-C (or SIGTERM / SIGHUP raised as one) while the root's options are parsed (Typer imports
        pydantic then) ended as one in the command: Typer's own ``main`` made it a silent exit 130."""
        try:
            return super().make_context(*args, **kw)
        except KeyboardInterrupt:
            raise typer.Exit(self._interrupted()) from None

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            raise typer.Exit(self._interrupted()) from None

    def _interrupted(self) -> int:
        """Say that the command was interrupted (:func:`gamead_cli.stops.interrupted_line`); its exit code."""
        from gamead_cli.stops import interrupted_code, interrupted_line

        error_line(interrupted_line(self.argv))
        return interrupted_code()

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
        DEBUG_FLAG["debug"] = False
        safe_streams()
        sys.exit(self._run(args, prog_name or "gamead", complete_var, **extra))

    def _run(self, args: Any, prog_name: str, complete_var: str | None, **extra: Any) -> int:
        argv = self.argv = list(sys.argv[1:] if args is None else args)
        if (output := sys.modules.get("gamead_cli.output")) is not None:  # a runner calling main() again
            output.JSON_PRINTED["done"] = False
        real = sys.stdout
        DONE["note"] = ""
        sys.stdout = guard = GuardedStdout(real)  # type: ignore[assignment]
        try:
            return self._guarded(argv, args, prog_name, complete_var, **extra)
        except SystemExit:  # click ends a command whose pipe closed with sys.exit(1) (left39b: `scale status |
            if guard.reader_left:  # head -1` exited 1): a reader gone is READER_GONE whichever way it was met
                return exitcodes.READER_GONE
            raise
        finally:
            say_what_was_done(guard)  # said here, whichever way the command ended
            if getattr(sys.stdout, "wrapped", None) is guard:  # click's PacifyFlushWrapper around it
                sys.stdout = guard  # type: ignore[assignment]
            if sys.stdout is guard:
                sys.stdout = real
            if guard.broken and real is not None:  # nothing more may reach it: the last flush would fail (exit 120)
                silence_stdout(real)

    def _guarded(self, argv: list[str], args: Any, prog_name: str, complete_var: str | None, **extra: Any) -> int:
        try:
            if (flag := unencodable_flag(self, argv, load_command)) is not None:  # nothing could send it
                raise typer.BadParameter(f"not text in this locale's encoding: {ADVICE}", param_hint=flag)
            result = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
            sys.stdout.flush()  # the output is written before the exit code says it was
        except BrokenPipeError:  # stdout's reader went away (`| head`): quiet, but for a write already done
            reader_gone()
            return exitcodes.READER_GONE
        except error_kinds("UsageError") as exc:
            if type(exc).__name__ == "NoArgsIsHelpError":  # `gamead` alone, `gamead dlq`: show the help, on stdout
                if exc.message:  # the help as text; a rich group's was printed as the error was made, its message ""
                    typer.echo(exc.message)  # newcomer57: show() wrote `gamead`'s to stderr (`gamead | less` was
                return exitcodes.USAGE  # empty), and a blank line there after a group's (`gamead dlq`)
            return fail_with(argv, usage_line(exc), "bad_usage", exitcodes.USAGE)
        except error_kinds("ClickException") as exc:  # e.g. a FileError of a file parameter
            code = getattr(exc, "exit_code", exitcodes.ERROR) or exitcodes.ERROR
            kind = "bad_usage" if code == exitcodes.USAGE else "failed"
            return fail_with(argv, exc.format_message(), kind, code)  # type: ignore[attr-defined]
        except (typer.Abort, *error_kinds("Abort")):  # Ctrl-C / EOF at a confirmation prompt
            return fail_with(argv, "aborted", "interrupted", exitcodes.INTERRUPTED)
        except GameadError as exc:
            return fail_with(argv, exc.message or type(exc).__name__, exc.code, exitcodes.exit_code_for(exc),
                         exc.details)
        except KeyboardInterrupt:  # Ctrl-C, or SIGTERM / SIGHUP as Ctrl-C (gamead_cli.first_signals)
            from gamead_cli.stops import interrupted_code, interrupted_line

            return fail_with(argv, interrupted_line(argv), "interrupted", interrupted_code())
        except OSError as exc:
            if exc.errno != errno.EPIPE:
                return unexpected_failure(argv, exc)
            reader_gone()  # a closed pipe found by a write of the command's own: the same
            return exitcodes.READER_GONE
        except UnicodeEncodeError as exc:  # a command-line value that is not text (PEP 383), met where it is sent
            held = holder_of(argv, exc.object[exc.start:exc.end]) if isinstance(exc.object, str) else None
            if held is None:
                return unexpected_failure(argv, exc)
            return fail_with(argv, f"{held} is not text in this locale's encoding: {ADVICE}", "bad_usage",
                             exitcodes.USAGE)
        except Exception as exc:  # noqa: BLE001 - the last line of defence: one red line, not a traceback
            return unexpected_failure(argv, exc)
        return result if isinstance(result, int) and not isinstance(result, bool) else exitcodes.OK


class _BuiltOnce(typer.Typer):
    """The root app, its click group built on its first call and kept (Typer builds it on every call: ~4 ms of a
    start, made once in a fork server for all its children, start58). What Typer's call does besides: its
    ``excepthook`` installed; with pretty exceptions off that hook is the interpreter's own, so the attribute
    Typer sets on an escaping exception for it changes nothing and is not set. ``typer.testing.CliRunner`` builds
    its own group from the app, as before."""

    _command: Any = None

    def click_group(self) -> Any:
        """The root click group, built on first use and kept."""
        if self._command is None:
            self._command = typer.main.get_command(self)
        return self._command

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if sys.excepthook != typer.main.except_hook:
            sys.excepthook = typer.main.except_hook
        return self.click_group()(*args, **kwargs)


app = _BuiltOnce(
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
    ctx: typer.Context,
    version: Annotated[
        bool, typer.Option("--version", is_eager=True, callback=_version, help="Print the version and exit.")
    ] = False,
    debug: Annotated[
        bool, typer.Option("--debug", help=f"Show the traceback of an unexpected error (or env {DEBUG_ENV}=1).")
    ] = False,
) -> None:
    """Control plane of the game ad analysis service: API, workers, queue, dashboard."""
    DEBUG_FLAG["debug"] = debug
    first_signals.command(ctx.invoked_subcommand)  # its module is imported: its body is next
    if os.environ.get("GAMEAD_PARENT_PID"):  # started by `gamead up`: stop if it dies (gamead_core.proc)
        from gamead_core.proc import watch_parent

        watch_parent()

