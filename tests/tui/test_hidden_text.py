"""What a client's text looks like on an operator's screen (attack32a F2, F4, F5, F8): hidden characters shown
escaped, tables measured as an ASCII locale writes them, clipped cells never cutting an escape, and ``gamead top``'s
details read like ``dlq show``. The views as the CLI prints them (``output.emit``); the API's side is in
tests/integration/test_hidden_input.py."""

from __future__ import annotations

import copy
import io
import re
import sys
from typing import Any

import pytest
from rich.console import Console
from rich.text import Text

from gamead_cli.commands.dlq_views import list_view as dlq_list_view
from gamead_cli.commands.workers import _view as workers_view
from gamead_cli.fitted import FittedTable
from gamead_cli.formats import clip
from gamead_cli.options import OutputFormat
from gamead_cli.output import emit
from gamead_cli.record_views import ad_list_view, ad_view, dlq_entry_view
from gamead_cli.tui.view_tables import details_view
from gamead_core.safe_text import shown, shown_tree

#: "EVIL visible" + the tag characters spelling "ignore" (invisible in xterm, tmux, VTE) + " hidden tags"
TAGGED = "EVIL visible" + "".join(chr(0xE0000 + ord(c)) for c in "ignore") + " hidden tags"
FLAG = "🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f Scots"  # the flag of Scotland
#: a character nobody sees: tags, Hangul fillers, Khmer inherent vowels, plane 14 (a raw one in output is hidden)
HIDDEN = re.compile("[\U000e0000-\U000e007f\u115f\u1160\u3164\uffa0\u17b4\u17b5]")
#: an escape cut in half by a clip: ``\u202…``
HALF_ESCAPE = re.compile(r"\\u[0-9a-f]{0,3}…|\\U[0-9a-f]{0,7}…")


def test_tags_fillers_and_stray_selectors_show_escaped_but_flags_and_emoji_as_they_are() -> None:
    assert shown(TAGGED) == "EVIL visible\\U000e0069\\U000e0067\\U000e006e\\U000e006f\\U000e0072\\U000e0065 hidden tags"
    assert shown(FLAG) == FLAG  # a valid emoji tag sequence shows as one flag
    assert shown("🏴\U000e0067\U000e0062 no cancel") == "🏴\\U000e0067\\U000e0062 no cancel"  # not a flag
    assert shown("x\U000e007f") == "x\\U000e007f"
    assert shown("\u3164\u3164 ok \uffa0\u115f\u1160") == "\\u3164\\u3164 ok \\uffa0\\u115f\\u1160"
    assert shown("a\u17b4\ufff0b\U000e0000") == "a\\u17b4\\ufff0b\\U000e0000"
    assert shown("❤\ufe0f 漢\U000e0100 ok") == "❤\ufe0f 漢\U000e0100 ok"  # one selector after what it varies
    # a run of selectors after an emoji hides bytes ("emoji smuggling"): all but the first show escaped
    assert shown("😀\U000e0100\U000e0101\ufe01") == "😀\U000e0100\\U000e0101\\ufe01"
    assert shown(" \ufe0f") == " \\ufe0f" and shown("\ufe0f") == "\\ufe0f"
    assert shown("braille⠀blank") == "braille⠀blank"  # U+2800 shows as a space: kept
    for text in (TAGGED, "\u3164", "😀\ufe0f\ufe0f"):
        assert shown(shown(text)) == shown(text)


AD = {"id": "01m87vjgr0jpf99az52ef3wdqx", "status": "dead", "priority": 3, "submittedAt": "2026-11-24T22:42:09Z",
      "attempts": 1, "workerId": "w1",
      "ad": {"title": TAGGED, "description": "d", "genre": "RPG", "targetAudience": ["a\u3164"],
             "callToAction": "Go", "duration": 30, "priority": 3},
      "error": {"errorClass": "Boom", "message": f"bad {TAGGED}", "retryable": False}}
ENTRY = {"adId": AD["id"], "title": TAGGED, "priority": 3, "attempts": 1, "errorClass": "Boom",
         "errorMessage": f"bad {TAGGED}", "retryable": False, "firstFailureAt": "2026-11-24T22:42:09Z",
         "lastFailureAt": "2026-11-24T22:42:09Z", "deadAt": "2026-11-24T22:42:09Z", "workerId": "w1",
         "submittedAt": "2026-11-24T22:42:09Z", "ad": AD["ad"]}
WORKERS = {"items": [{"id": "w1", "role": "worker", "host": "h", "pid": 1, "state": "running", "inFlight": 0,
                      "processed": 1, "failed": 1, "lastError": f"Boom: {TAGGED}", "heartbeatAgeSeconds": 1.0}],
           "count": 1}
VIEWS = {
    "ads get": (lambda d: ad_view(d), AD),
    "ads list": (lambda d: ad_list_view(d, flags={}), {"items": [AD], "count": 1}),
    "dlq show": (lambda d: dlq_entry_view(d), ENTRY),
    "dlq list": (lambda d: dlq_list_view(d, flags={}), {"items": [ENTRY], "count": 1, "total": 1}),
    "workers": (lambda d: workers_view(d, None), WORKERS),
}


def _printed(render: Any, data: Any, encoding: str = "utf-8") -> str:
    """What ``emit`` writes to a stdout of ``encoding`` (``?`` for what it cannot write, as gamead's guard)."""
    raw = io.BytesIO()
    out = io.TextIOWrapper(raw, encoding=encoding, errors="replace", newline="\n")
    saved, sys.stdout = sys.stdout, out
    try:
        emit(copy.deepcopy(data), OutputFormat.table, render)
        out.flush()
    finally:
        sys.stdout = saved
    return raw.getvalue().decode(encoding)


@pytest.mark.parametrize("name", list(VIEWS))
def test_every_cli_view_shows_hidden_tag_characters_escaped(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    render, data = VIEWS[name]
    out = _printed(render, data)
    assert not HIDDEN.search(out), out
    assert "\\U000e0069" in out, out


CJK = "龍の王国：権力への台頭 超長いタイトル🐉🐉🐉 竜" * 3
ZALGO = "EVIL Z" + "\u0301" * 120 + "algo"


@pytest.mark.parametrize("name", ["ads list", "dlq list", "workers"])
def test_an_ascii_locale_table_keeps_its_width(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """attack32a F4: laid out for the real widths, then each non-ASCII character written as ``?``, a row of 120
    combining marks ran ~130 columns past the table and a CJK row came out short."""
    monkeypatch.setenv("COLUMNS", "80")
    render, _ = VIEWS[name]
    ads = [{**AD, "id": f"01m87vjgr0jpf99az52ef3wdq{n}", "ad": {**AD["ad"], "title": t}}
           for n, t in enumerate((ZALGO, CJK, "plain ascii title " * 8))]
    entries = [{**ENTRY, "adId": a["id"], "title": a["ad"]["title"], "errorMessage": a["ad"]["title"]} for a in ads]
    nodes = [{**WORKERS["items"][0], "id": f"w{n}", "lastError": a["ad"]["title"]} for n, a in enumerate(ads)]
    data = {"ads list": {"items": ads, "count": 3}, "dlq list": {"items": entries, "count": 3, "total": 3},
            "workers": {"items": nodes, "count": 3}}[name]
    lines = [line for line in _printed(render, data, "ascii").splitlines() if line.strip()]
    rows = [line for line in lines if line.startswith(("01m87", "w0", "w1", "w2"))]
    assert len(rows) == 3, lines
    assert all(len(line) <= 80 for line in lines), "\n".join(lines)
    assert len({len(line.rstrip()) for line in rows}) == 1, "\n".join(rows)  # each row clipped to the same width


@pytest.mark.parametrize("stored", ["EVIL a\u2028b tail", "EVIL line\rOVERWRITE", "EVIL \ufff9x", TAGGED])
def test_a_clipped_cell_never_cuts_an_escape(stored: str) -> None:
    """attack32a F8: ``EVIL a\\u202…`` read as a bidi control the API refuses; the whole escape goes, or stays."""
    for width in range(4, 60):
        assert not HALF_ESCAPE.search(clip(stored, width)), (width, clip(stored, width))
    for width in range(34, 62):  # the two titles never fit (26 + 2 + 36 cells at least)
        console = Console(width=width, file=io.StringIO(), color_system=None)
        table = FittedTable(("ID", "TITLE"), [("01m87vjgr0jpf99az52ef3wdqx", stored * 3),
                                              ("01m87vjgr0jpf99az52ef3wdqy", Text(stored * 3, style="red"))],
                            flex="TITLE", flex_max=200)
        console.print(table)
        out = console.file.getvalue()  # type: ignore[attr-defined]
        assert not HALF_ESCAPE.search(out), (width, out)
        assert out.count("…") == 2, (width, out)


def test_the_top_details_of_a_dlq_entry_and_a_node_read_like_dlq_show() -> None:
    """attack32a F5: the ad as JSON with ``\\u9f8d…`` and surrogate pairs, ``retryable False``, raw ISO times,
    ``taskTimeout 60.0``."""
    entry = shown_tree({**ENTRY, "ad": {**ENTRY["ad"], "title": f"EVIL {CJK}", "description": "🐉 dragons"}})
    console = Console(width=200, file=io.StringIO(), color_system=None)
    console.print(details_view(entry))
    console.print(details_view({"id": "w1", "taskTimeout": 60.0, "ackWait": 30.0, "heartbeatInterval": 2.0,
                                "processingMs": {"p50": 302.2, "p95": 307.9, "count": 3}, "draining": False,
                                "heartbeatAt": "2026-11-24T22:42:13Z"}))
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert "龍の王国" in out and "🐉 dragons" in out and "\\u9f8d" not in out and "\\ud83d" not in out, out
    assert "\\U000e0069" in out and not HIDDEN.search(out), out  # still escaped where it must be
    assert re.search(r"retryable\s+no\b", out) and "False" not in out, out
    assert re.search(r"first failure\s+2026-11-24 22:42:09 UTC \(.+ ago\)", out), out
    assert re.search(r"task timeout\s+60 s\b", out) and re.search(r"ack wait\s+30 s\b", out), out
    assert re.search(r"heartbeat interval\s+2 s\b", out) and "p95 307.9 ms" in out, out
    assert re.search(r"draining\s+no\b", out) and re.search(r"last heartbeat\s+2026-11-24 22:42:13 UTC", out), out
    assert re.search(r"^\s+title\s+EVIL 龍", out, re.M) and re.search(r"duration\s+30 s\b", out), out
