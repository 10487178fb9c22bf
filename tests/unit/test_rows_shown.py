"""attack43b F4: the second page of ``gamead ads list --limit 500`` said ``235 shown of 735, newest first``, as if
500 were missing. A paged list now says which rows it holds when the API counted those before the page, and that
it is the part after the cursor when it did not."""

from __future__ import annotations

import io

from gamead_cli.formats import rows_shown


def test_a_later_page_says_which_rows_it_holds() -> None:
    assert rows_shown(235, "735", 500, after_cursor=True) == "rows 501-735 of 735"
    assert rows_shown(1, "5 matching", 4, after_cursor=True) == "row 5 of 5 matching"


def test_a_later_page_whose_position_is_unknown_says_it_follows_the_cursor() -> None:
    """An unfiltered `dlq list --cursor` (the API does not count the entries before it: `offset` null), or an API
    older than `offset`."""
    assert rows_shown(235, "735", None, after_cursor=True) == "235 shown (after the cursor) of 735"
    assert rows_shown(2, None, None, after_cursor=True) == "2 shown (after the cursor)"


def test_a_first_page_reads_as_before() -> None:
    assert rows_shown(500, "735", 0) == "500 shown of 735"
    assert rows_shown(3, "at least 27 matching", None) == "3 shown of at least 27 matching"


def test_an_audit_page_after_a_cursor_says_so() -> None:
    """`gamead audit --cursor 19` has no total to place its rows in: it says they follow the cursor. Without the fix
    it read `1 record(s), newest first`, as the first page does."""
    import io

    from rich.console import Console

    from gamead_cli.commands.audit import audit_view

    body = {"items": [{"id": "01m87vkmq8v5dcb3rz1x2y4a6e", "seq": 6, "at": "2026-11-24T22:42:11Z", "action": "purge",
                       "outcome": "accepted", "actor": "alice", "role": "operator", "client": "10.0.4.17",
                       "repeats": 1}], "count": 1, "nextCursor": 6}
    out = io.StringIO()
    Console(file=out, width=200, no_color=True).print(audit_view(body, {"--cursor": 19}))
    assert "1 record(s) (after the cursor), newest first" in out.getvalue(), out.getvalue()
    out = io.StringIO()
    Console(file=out, width=200, no_color=True).print(audit_view(body, {}))
    assert "1 record(s), newest first" in out.getvalue(), out.getvalue()



def test_figures_carry_thousands_separators_as_every_count_the_cli_prints() -> None:
    """regress44 F7: ``gamead ads list`` said ``1 shown of 2622`` where doctor says ``2,615 records``; ``dlq
    list`` alike. Without the fix: ``1 shown of 2622, newest first`` (and ``rows 1001-2000``)."""
    from rich.console import Console

    from gamead_cli.commands.dlq_views import list_view
    from gamead_cli.record_views import ad_list_view

    def said(view: object) -> str:
        console = Console(width=200, record=True, file=io.StringIO())
        console.print(view)
        return " ".join(console.export_text().split())

    item = {"id": "01m87v538ce744cfgethvyb39n", "status": "completed", "priority": 3, "title": "One",
            "submittedAt": "2026-12-05T16:00:00Z"}
    assert "1 shown of 2,622, newest first" in said(ad_list_view({"items": [item], "count": 1, "total": 2622}))
    entry = {"adId": item["id"], "title": "One", "priority": 3, "errorClass": "X", "errorMessage": "m",
             "deadAt": "2026-12-05T16:00:00Z", "attempts": 1}
    dlq = said(list_view({"items": [entry], "count": 1, "total": 1200, "inDlq": 12_000, "offset": 1000}))
    assert "row 1,001 of 1,200 matching (12,000 in the DLQ)" in dlq, dlq
    assert rows_shown(1000, "12,000", 1000) == "rows 1,001-2,000 of 12,000"
