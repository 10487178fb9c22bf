"""Stored client text is shown escaped wherever the CLI or the dashboard prints it (brief text13, finding 1b).

Text stored before the API refused terminal controls (an older record, a DLQ import of an older export, a log
line, an audit entry) holds, e.g., ``A\\u009b31mRED\\u009b0m``: xterm obeys U+009B as ``ESC [``. Every print site
goes through one helper (:mod:`gamead_core.safe_text`): ``ads``/``dlq``/``audit``/``workers`` views (via
``output.emit``), ``top --once`` (``snapshot_view``), the dashboard (``ShownSource``), log lines (``format_line``).
"""

from __future__ import annotations

import asyncio
import copy
import io
import json
import re
import sys
import unicodedata
from typing import Any

import pytest
from rich.console import Console

from gamead_cli.commands.audit import audit_view
from gamead_cli.commands.dlq_views import list_view as dlq_list_view
from gamead_cli.commands.workers import _view as workers_view
from gamead_cli.fitted import FittedTable
from gamead_cli.options import OutputFormat
from gamead_cli.output import emit, error_line
from gamead_cli.record_views import ad_list_view, ad_view, dlq_entry_view
from gamead_cli.tui.app import DashboardApp
from gamead_cli.tui.logs import format_line
from gamead_cli.tui.source import ShownSource
from gamead_cli.tui.source_recorded import RecordedSource
from gamead_cli.tui.view import Snapshot, snapshot_view
from gamead_cli.tui.widgets_tables import DlqTable, NodesTable
from gamead_core.safe_text import REFUSED, refused_char, shown, shown_tree
from tests.tui.conftest import screen_text, settled, until

CSI = "A\u009b31mRED\u009b0m"
OSC = "X\u009d8;;http://evil\u009cLINK\u009d8;;\u009c"
#: what a terminal must never receive from client text: C0 (but tab, LF), DEL, C1, bidi controls, separators
RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u200b\ufeff\u2028\u2029]")
LEGIT = ["👩\u200d💻 Dev Quest", "Cafe\u0301", "مرحبا\u200f!",
         "🏴\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f",
         "a\tb\nc", "plain [red]markup[/red]", "नमस्\u200dते", "می\u200cخواهم"]


def test_shown_escapes_what_a_terminal_obeys_and_keeps_what_text_needs() -> None:
    assert shown(CSI) == "A\\u009b31mRED\\u009b0m"
    assert shown(OSC) == "X\\u009d8;;http://evil\\u009cLINK\\u009d8;;\\u009c"
    assert shown("txt\u202eexe.") == "txt\\u202eexe."
    assert shown("x\u200by\ufeffz\u2028w\u2029\x1b[0m\U000e0001") == \
        "x\\u200by\\ufeffz\\u2028w\\u2029\\u001b[0m\\U000e0001"
    for text in LEGIT:
        assert shown(text) == text
    assert shown("a\r\nb\rc") == "a\nb\\u000dc"  # a CRLF line end stays one; a lone CR (moves the cursor) shows
    for text in (CSI, OSC, "a\u202e", "x\u200by"):
        assert shown(shown(text)) == shown(text)  # idempotent: a view may escape twice
    assert shown_tree({"k\u009b": [CSI, 1, None, {"t": ("a\u202e",)}]}) == \
        {"k\\u009b": ["A\\u009b31mRED\\u009b0m", 1, None, {"t": ["a\\u202e"]}]}


def test_every_code_point_refused_on_input_is_shown_escaped() -> None:
    """Display covers input: whatever the API refuses (and anything else of categories Cc, Zl, Zp) never
    reaches a terminal raw, by any code point."""
    for cp in range(0x110000):
        char = chr(cp)
        if REFUSED.match(char) or unicodedata.category(char) in ("Cc", "Zl", "Zp"):
            assert shown(char) != char or char in "\t\n", hex(cp)
    assert refused_char("ok \u200d\u200c\u200e\u200f\u061c\u200b\ufeff\u2028") is None
    refused = "\x9b\u202a\u202e\u2066\u2069\x85"
    assert [refused_char(f"a{c}") for c in refused] == list(refused)


def _printed(render: Any, data: Any, width: int = 160) -> str:
    out = io.StringIO()
    saved, sys.stdout = sys.stdout, out
    try:
        emit(data, OutputFormat.table, render)
    finally:
        sys.stdout = saved
    return out.getvalue()


AD = {"id": "01m87vjgr0jpf99az52ef3wdqx", "status": "dead", "priority": 3, "submittedAt": "2026-11-24T22:42:09Z",
      "attempts": 1, "idempotencyKey": "k\u009b1", "workerId": "w\u009b1",
      "ad": {"title": CSI, "description": f"see {OSC}", "genre": "g\u202e", "targetAudience": ["a\u2066b"],
             "visualElements": [OSC], "callToAction": "Go\u009b", "duration": 30, "priority": 3},
      "error": {"errorClass": "Boom\u009b", "message": f"bad {CSI}", "retryable": False}}
ENTRY = {"adId": AD["id"], "title": CSI, "priority": 3, "attempts": 1, "errorClass": "Boom",
         "errorMessage": f"bad {OSC}", "retryable": False, "firstFailureAt": "2026-11-24T22:42:09Z",
         "lastFailureAt": "2026-11-24T22:42:09Z", "deadAt": "2026-11-24T22:42:09Z", "workerId": "w1",
         "submittedAt": "2026-11-24T22:42:09Z", "ad": AD["ad"]}
AUDIT = {"items": [{"id": "01m87vkmq8v5dcb3rz1x2y4a6e", "seq": 6, "at": "2026-11-24T22:42:11Z", "action": "purge",
                    "outcome": "refused", "actor": "wall\u009bboard", "role": "viewer", "client": "10.0.4.17",
                    "code": "forbidden", "message": f"no {CSI}", "repeats": 1,
                    "selection": {"filter": {"errorClass": OSC}}}], "count": 1}
WORKERS = {"items": [{"id": "w\u009b1", "role": "worker", "host": "h\u202e", "pid": 1, "state": "running",
                      "inFlight": 0, "processed": 1, "failed": 1, "lastError": f"Boom: {CSI}",
                      "heartbeatAgeSeconds": 1.0}], "count": 1}


@pytest.mark.parametrize("name", ["ads get", "ads list", "dlq show", "dlq list", "audit", "workers"])
def test_every_cli_view_prints_stored_text_escaped(name: str) -> None:
    render, data = {
        "ads get": (lambda d: ad_view(d), AD),
        "ads list": (lambda d: ad_list_view(d, flags={}), {"items": [AD], "count": 1}),
        "dlq show": (lambda d: dlq_entry_view(d), ENTRY),
        "dlq list": (lambda d: dlq_list_view(d, flags={}), {"items": [ENTRY], "count": 1, "total": 1}),
        "audit": (lambda d: audit_view(d, {}), AUDIT),
        "workers": (lambda d: workers_view(d, None), WORKERS),
    }[name]
    out = _printed(render, copy.deepcopy(data))
    assert not RAW.search(out), out
    assert "\\u009" in out, out  # \u009b or \u009d (dlq list shows the message, not the title)


def test_top_once_and_error_lines_and_log_lines_escape(recorded: dict[str, Any], capsys: Any) -> None:
    snap = Snapshot(stats=recorded["stats"], nodes=copy.deepcopy(WORKERS["items"]), dlq={"items": [ENTRY]},
                    audit=AUDIT)
    console = Console(width=160, file=io.StringIO(), color_system=None)
    console.print(snapshot_view(snap, "http://api"))
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert not RAW.search(out) and "\\u009b" in out, out
    assert snap.dlq["items"][0]["title"] == CSI  # type: ignore[index]  # -o json keeps the text as stored
    error_line(f"not found: {CSI}")
    assert "\\u009b" in capsys.readouterr().err
    line = json.dumps({"ts": "t", "level": "INFO", "logger": "x", "message": f"title {CSI}", "ad_id": "a"})
    assert format_line(line) == "t INFO x title A\\u009b31mRED\\u009b0m  ad_id=a"
    assert format_line("\x1b[31mcrash\x1b[0m") == "\\u001b[31mcrash\\u001b[0m"


def test_a_fitted_table_escapes_any_cell() -> None:
    from rich.text import Text

    table = FittedTable(("ID", "TITLE"), [("a", CSI), ("b", Text(OSC, style="red"))], flex="TITLE")
    console = Console(width=120, file=io.StringIO(), color_system=None)
    console.print(table)
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert not RAW.search(out) and "A\\u009b31mRED\\u009b0m" in out, out


def test_the_dashboard_shows_stored_text_escaped(recorded: dict[str, Any]) -> None:
    data = copy.deepcopy(recorded)
    entry = data["dlq"]["items"][0]
    entry.update(title=CSI, errorMessage=f"bad {OSC}")
    entry["ad"]["title"] = CSI
    data["workers"][-1]["lastError"] = f"Boom: {CSI} txt\u202eexe."
    source = RecordedSource(data)
    assert ShownSource(source).dlq()["items"][0]["title"] == "A\\u009b31mRED\\u009b0m"
    assert ShownSource(source).api_url == source.api_url

    async def main() -> None:
        app = DashboardApp(source, refresh=0.2)
        async with app.run_test(size=(200, 50)) as pilot:
            await until(pilot, lambda: app.query_one(DlqTable).row_count > 0
                        and app.query_one(NodesTable).row_count > 0, what="the first refresh")
            await settled(pilot)
            text = screen_text(app)
            assert not RAW.search(text), text
            assert "\\u009b" in text, text
            detail = await asyncio.to_thread(app.source.dlq_entry, entry["adId"])
            assert detail["errorMessage"] == "bad X\\u009d8;;http://evil\\u009cLINK\\u009d8;;\\u009c"

    asyncio.run(main())
