"""attack47 F4: ``gamead dlq list`` shows a long error message in a few lines, as the dashboard shows it in one. An
entry imported with a 4,000-character ``errorMessage`` (the most an entry holds) made its row ~80 lines long at 160
columns; ``gamead dlq show ID`` and ``-o json`` have the message whole."""

from __future__ import annotations

from rich.console import Console

from gamead_cli.commands.dlq_views import entries_table

ENTRY = {"adId": "01m944jq64rqgye7haa13szxb9", "priority": 3, "attempts": 1, "errorClass": "PermanentError",
         "errorMessage": "injected permanent fault (worker.faults)", "deadAt": "2026-12-05T22:18:17Z",
         "title": "Doom Many"}


def rows(*entries: dict) -> list[str]:
    console = Console(width=160, record=True)
    console.print(entries_table({"items": list(entries)}))
    return console.export_text().splitlines()[1:]


def test_a_long_message_takes_a_few_lines() -> None:
    long = {**ENTRY, "errorMessage": "boom " + "Z" * 3995}
    shown = rows(long, ENTRY)
    assert len(shown) <= 7, len(shown)
    assert "…" in "".join(shown) and shown[0].startswith("01m944jq64rqgye7haa13szxb9")
    assert "injected permanent fault (worker.faults)" in shown[-1]


def test_a_short_message_is_whole() -> None:
    assert rows(ENTRY)[0].split("  PermanentError  ")[1].startswith("injected permanent fault (worker.faults)")
