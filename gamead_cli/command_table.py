"""The commands of ``gamead``, registered lazily: the table ``gamead --help`` lists without importing any of
them, how a command's module is imported and built into a click command when it runs or shows its own help,
and how its help text is shown (paragraphs reflowed to the terminal, arguments named as the text names them)."""

from __future__ import annotations

import importlib
from typing import Any

import typer
from typer.core import TyperArgument, TyperCommand

#: name → (module, attribute, the one line ``gamead --help`` shows). The attribute is a command function
#: (its module docstring is its help) or a ``typer.Typer`` sub-app. Order = the order in ``--help``.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "up": ("gamead_cli.commands.up", "up",
           "The whole stack on this machine: embedded NATS, the API and autoscaled workers."),
    "submit": ("gamead_cli.commands.submit", "submit",
               "Submit game ads: one from a file, stdin or flags, or --count N generated ones."),
    "ads": ("gamead_cli.commands.ads", "app", "Look at submitted ads and their analyses."),
    "top": ("gamead_cli.commands.top", "top", "Live dashboard of the queue, the nodes and the dead letters."),
    "workers": ("gamead_cli.commands.workers", "app",
                "The live API nodes and workers, with their health; quiet or resume one worker."),
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


#: name → its click command, built once per process (a fork server's children inherit those it built: start58)
_LOADED: dict[str, Any] = {}


def load_command(name: str) -> Any:
    """Import the module of command ``name`` and build its click command (a group for a sub-app), once per process
    (1-3 ms of a start). Shell completion (``--install-completion``/``--show-completion``) is an option of the root
    ``gamead`` alone, not repeated in every verb's ``--help``."""
    if (built := _LOADED.get(name)) is None:
        built = _LOADED[name] = _build(name)
    return built


def _build(name: str) -> Any:
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


class LazyCommand(TyperCommand):
    """Stands in for a command in ``gamead --help`` (name and one line) until the command is used."""

    def __init__(self, name: str, short_help: str) -> None:
        super().__init__(name, short_help=short_help, help=short_help, rich_markup_mode="rich")
