"""attack43b F4: the second page of ``gamead ads list --limit 500`` said ``235 shown of 735, newest first``, as if
500 were missing. A paged list now says which rows it holds when the API counted those before the page, and that
it is the part after the cursor when it did not."""

from __future__ import annotations

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
