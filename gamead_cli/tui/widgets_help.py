"""The dashboard's dialogs: the help (keys, commands, what the colours mean; without the actions when
read-only) and the details of one node or entry. The hint to close each is always on screen."""

from __future__ import annotations

from rich.console import RenderableType
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from gamead_cli.tui import commands

#: the help, one line per key, each under 60 columns so it fits a 60-column terminal without wrapping
HELP_KEYS: tuple[tuple[str, str], ...] = (
    ("tab", "next panel (shift+tab: previous)"),
    ("↑ ↓", "move in a table"),
    ("enter", "details; on a queue level: its oldest ads"),
    ("escape", "back one screen (the breadcrumb says where)"),
    ("/", "filter the table (!text inverts; escape clears)"),
    (":", "command line (tab completes; commands below)"),
    ("ctrl+p", "command palette: the same commands"),
    ("l", "on a node: follow its log (:logs WORKER)"),
    ("space", "mark a DLQ entry (several can be marked)"),
    ("ctrl+a", "mark every DLQ entry the filter shows"),
    ("r", "replay the marked entries (or the current one)"),
    ("x", "purge the marked entries (or the current one)"),
    ("p", "pause / resume refreshing"),
    ("?", "this help"),
    ("q", "quit"),
    ("ctrl+c", "quit too (exit code 130)"),
)
_ACTION_KEYS = frozenset({"space", "ctrl+a", "r", "x"})
HELP_NOTES = """\
r and x ask you to type the number of entries first; one
server-side job acts on them all, its progress shows live.
A queue row turns red, its OLDEST marked !, when its oldest
ad waited past MAX, the level's promised wait (its aging
horizon: (level − 1) × queue.aging_step, one step for P1):
the level is late.
Figures are per second or percentiles over the last minute
(less just after the API started: the panel's title says);
ack pending and the queue are now; sparklines show the last
5 minutes. Node states: [green]ok[/] busy · [cyan]idle[/] no work ·
[yellow]draining[/] stopping · [magenta]quiet[/] takes no new ad until
resumed · [yellow]late[/] heartbeat 2.5 beats overdue ·
[bold red]stuck[/] holds ads, finished none within its task timeout,
or no heartbeat for registry.ttl · [bold red]gone[/] its registry entry
expired (listed a while; it may still hold ads). UP: since
its process started; COMPLETED and FAILED count from then."""


#: the keys of a replayed recording (``gamead top --replay FILE``)
HELP_REPLAY_KEYS: tuple[tuple[str, str], ...] = (
    ("p", "pause / play (at the end: from the start)"),
    (".", "pause and step one snapshot forward"),
    (",", "pause and step one snapshot back"),
    ("+", "play faster (up to ×16)"),
    ("-", "play slower (down to ×0.25)"),
)


def help_text(*, readonly: bool = False, replay: bool = False) -> Text:
    """The help: keys (without the actions in a read-only dashboard), then what the colours mean."""
    text = Text.from_markup("[b]gamead top[/b] — the queue, the nodes, the dead letters\n\n")
    if readonly:  # first: a short terminal shows the top of the help
        text.append("read-only: actions are off (--readonly, or a token\nthat may not act)\n\n", style="bold magenta")
    for key, meaning in HELP_KEYS:
        if readonly and key in _ACTION_KEYS:
            continue
        text.append(f"  {key:<6} ", style="bold")
        text.append(f"{meaning}\n")
    if replay:
        text.append("\nreplaying a recording\n", style="bold")
        for key, meaning in HELP_REPLAY_KEYS:
            text.append(f"  {key:<6} ", style="bold")
            text.append(f"{meaning}\n")
    text.append("\ncommands (: or ctrl+p)\n", style="bold")
    for spec in commands.COMMANDS:
        if readonly and spec.acts:
            continue
        text.append(f"  :{spec.usage:<21} ", style="bold")
        text.append(f"{spec.meaning}\n")
    text.append("\n")
    text.append_text(Text.from_markup(HELP_NOTES if not readonly else HELP_NOTES.split("\n", 1)[1]))
    return text


class HelpScreen(ModalScreen[None]):
    """The keys and what the colours mean. The hint to close is docked: always on screen, even at 60×20."""

    BINDINGS = [Binding("escape,q,question_mark,enter", "dismiss", "close")]

    def __init__(self, *, readonly: bool = False, replay: bool = False) -> None:
        super().__init__()
        self.readonly = readonly
        self.replay = replay

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static("press escape to close", classes="hint")
            with VerticalScroll(id="help-scroll"):
                yield Static(help_text(readonly=self.readonly, replay=self.replay), id="help-text")


class DetailScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,enter,q", "dismiss", "close")]

    def __init__(self, title: str, body: RenderableType) -> None:
        super().__init__()
        self.title_text = title
        self.body = body

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="wide"):
            yield Static("escape to close", classes="hint")
            yield Static(Text(self.title_text, style="bold"), id="detail-title")
            with VerticalScroll():
                yield Static(self.body, id="detail-body")
