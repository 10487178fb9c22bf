"""The ``gamead`` entry point (the console script, ``python -m gamead_cli``): SIGTERM and SIGHUP handled as Ctrl-C
from its first instant (:mod:`gamead_cli.first_signals`), then the command (:mod:`gamead_cli.root`, imported only
after: with the command's own module it is the 1-3 s of a start on a loaded machine, newcomer35 F6). Nothing
heavy is imported here; ``from gamead_cli.main import app`` still gives the root app (imported on first use)."""

from __future__ import annotations

import sys


def main() -> None:
    """Console-script entry point. Once the command has ended, a signal ends the process at once
    (:func:`gamead_cli.stops.ended`): a Ctrl-C while the exit waits for a thread prints no traceback. A
    SIGTERM, SIGHUP or Ctrl-C that comes before the error boundary exists (while its modules are imported, or Typer
    builds the command tree) ends the command as the boundary would have: one red line, exit 143 / 129 / 130."""
    from gamead_cli import first_signals, interrupt_point

    first_signals.install()
    interrupt_point.install()
    try:
        try:
            from gamead_cli.root import app

            app()  # Typer builds the command tree first: a signal then is still before the boundary (load58A)
        except KeyboardInterrupt:
            sys.exit(_interrupted_while_importing())
    finally:
        from gamead_cli.stops import ended

        ended()


def _interrupted_while_importing() -> int:
    """One red line and the exit code of a command interrupted before its error boundary was imported."""
    from gamead_cli.failures import fail_with
    from gamead_cli.stops import interrupted_code, interrupted_line

    argv = sys.argv[1:]
    return fail_with(argv, interrupted_line(argv), "interrupted", interrupted_code())


def __getattr__(name: str) -> object:
    """``app`` (the root Typer app) for ``from gamead_cli.main import app``: imported on first use."""
    if name == "app":
        from gamead_cli.root import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
