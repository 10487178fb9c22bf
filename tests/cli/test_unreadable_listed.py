"""``gamead ads list`` says when the API skipped records it cannot read (attack31a F8: one such record made every
listing a 500; now ``GET /ads`` skips it and counts it in ``unreadable``, naming it in ``unreadableIds``)."""

from __future__ import annotations

import io

from rich.console import Console

from gamead_cli.record_views import ad_list_view


def _text(body: dict[str, object]) -> str:
    console = Console(file=io.StringIO(), width=200, color_system=None)
    console.print(ad_list_view(body))
    return console.file.getvalue()  # type: ignore[attr-defined]


def test_the_listing_names_the_records_it_could_not_read() -> None:
    bad = "01m8yn8xqncjvtftz8k3qnd8v2"
    body = {"items": [], "count": 0, "total": 0, "nextCursor": None, "scanned": 3, "complete": True,
            "unreadable": 2, "unreadableIds": [bad]}
    text = _text(body)
    assert "2 records skipped: cannot be read as ad records" in text and bad in text and "gamead doctor" in text
    assert "skipped" not in _text({**body, "unreadable": 0, "unreadableIds": []})
