"""polish47: ``gamead top --once``'s first line at 80 columns wrapped mid-field: ``… (0/8 slots busy)  NATS`` on
the first line, ``gamead_embedded v2.15.1 · 4.5 KiB stored (read 4.1s ago)  at 22:25:08 UTC`` on the next. It is
now the live header at the width it is drawn at (compact under 100 cells, whole fields dropped to fit: the API's
address first, then the storage used), one line; to a pipe every field, on one line (``gamead_cli.output.emit``)."""

from __future__ import annotations

import io
from typing import Any

import pytest
from rich.cells import cell_len
from rich.console import Console

from gamead_cli.tui import view


def _lines(snap: view.Snapshot, width: int) -> list[str]:
    console = Console(width=width, file=io.StringIO(), record=True, color_system=None)
    console.print(view.snapshot_view(snap, "http://127.0.0.1:51467"))
    return console.export_text().splitlines()


@pytest.mark.parametrize("width", [60, 80, 99, 120])
def test_the_first_line_is_one_line_with_every_field_whole(recorded: dict[str, Any], width: int) -> None:
    snap = view.Snapshot(stats=recorded["stats"], nodes=recorded["workers"])
    first, second = _lines(snap, width)[:2]
    assert cell_len(first.rstrip()) <= width and second.strip() == "", (first, second)
    assert first.startswith("gamead ") and " api · " in first and "NATS" in first, first
    name = "gamead_embedded v2.15.1" if width >= 100 else "v2.15.1"  # compact under 100 cells, as the live one
    assert f"NATS {name}" in first and (width < 80 or first.rstrip().endswith(" UTC")), first  # the time: rank 2


def test_to_a_pipe_the_header_keeps_every_field(recorded: dict[str, Any]) -> None:
    parts = view.snapshot_view(view.Snapshot(stats=recorded["stats"], nodes=recorded["workers"]), "http://api:1")
    header = parts.renderables[0].prose(80).plain
    assert header.startswith("gamead http://api:1  ") and "NATS gamead_embedded v2.15.1 · " in header, header
    assert " stored" in header and "slots busy" in header, header
