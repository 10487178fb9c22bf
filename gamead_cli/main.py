"""The ``gamead`` command: one root app, one sub-app per noun, errors turned into one red line."""

from __future__ import annotations

from typing import Any

import click
import typer
from typer.core import TyperGroup

from gamead_cli.exitcodes import exit_code_for
from gamead_cli.output import error_line
from gamead_core.errors import GameadError


class _GuardedGroup(TyperGroup):
    """Root group: a :class:`GameadError` from any command becomes one red line and a meaningful exit."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except GameadError as exc:
            error_line(exc)
            raise typer.Exit(exit_code_for(exc)) from None
        except KeyboardInterrupt:
            error_line("interrupted")
            raise typer.Exit(130) from None


app = typer.Typer(
    cls=_GuardedGroup,
    name="gamead",
    help="Control plane of the game ad analysis service: API, workers, queue, dashboard.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    rich_markup_mode="rich",
)


def _register() -> None:
    from gamead_cli.commands import ads, config_cmd, dlq, serve, submit, up, worker

    app.command("serve", help=serve.__doc__)(serve.serve)
    app.command("worker", help=worker.__doc__)(worker.worker)
    app.command("up", help=up.__doc__)(up.up)
    app.command("submit", help=submit.__doc__)(submit.submit)
    app.add_typer(ads.app, name="ads")
    app.add_typer(dlq.app, name="dlq")
    app.add_typer(config_cmd.app, name="config")
    # (top, workers: registered below by the dashboard work)
    from gamead_cli.commands import top, workers

    app.command("top", help=top.__doc__)(top.top)
    app.command("workers", help=workers.__doc__)(workers.workers)
    # (scale: the autoscaler's status and manual override)
    from gamead_cli.commands import scale

    app.add_typer(scale.app, name="scale")


_register()


def main() -> None:
    """Console-script entry point."""
    app()
