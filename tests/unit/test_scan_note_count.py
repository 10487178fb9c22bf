"""attack45 F3: `gamead ads list` over a bucket past api.list_scan_limit said `2 shown of 9,445 among the newest 10000
records`: the window's size was the one count on that line without thousands separators (regress44 F7: every count
the CLI prints has them)."""

from __future__ import annotations

from gamead_cli.record_views import scan_note


def test_the_scanned_window_is_a_count_with_separators() -> None:
    assert scan_note({"complete": False, "scanned": 10000}) == "among the newest 10,000 records (api.list_scan_limit)"
    assert scan_note({"complete": False, "scanned": 100}) == "among the newest 100 records (api.list_scan_limit)"
    assert scan_note({"complete": True, "scanned": 10000}) == ""


def test_the_other_stopped_reads_say_their_counts_with_separators() -> None:
    """`dlq list`, `audit` (its page line and its empty answer) say how many they read before a bound stopped them."""
    import io

    from rich.console import Console

    from gamead_cli.commands.audit import audit_view
    from gamead_cli.commands.dlq_views import list_view

    def shown(renderable: object) -> str:
        out = io.StringIO()
        Console(file=out, width=200).print(renderable)
        return " ".join(out.getvalue().split())

    audit = {"items": [], "count": 0, "complete": False, "scanned": 20000, "nextCursor": 5}
    assert "read 20,000 records, then stopped (audit.scan_limit)" in shown(audit_view(audit))
    dlq = {"items": [], "count": 0, "total": 0, "inDlq": 50000, "complete": False, "scanned": 20000,
           "stoppedAt": "dlq.scan_limit", "nextCursor": 20000}
    assert "read 20,000 entries, then stopped at dlq.scan_limit" in shown(list_view(dlq))


def test_an_empty_later_page_says_it_is_after_the_cursor() -> None:
    """attack45 F11: `gamead ads list --cursor <older than every ad>` said `no ads`, as for an empty store."""
    import io

    from rich.console import Console

    from gamead_cli.record_views import ad_list_view

    def shown(renderable: object) -> str:
        out = io.StringIO()
        Console(file=out, width=200).print(renderable)
        return " ".join(out.getvalue().split())

    empty = {"items": [], "count": 0, "total": 0, "complete": True, "scanned": 40, "nextCursor": None}
    assert shown(ad_list_view(empty, after_cursor=True)) == "no ads after the cursor"
    dead = shown(ad_list_view(empty, {"--status": "dead"}, after_cursor=True))
    assert dead == "no ads match --status dead after the cursor"
    assert shown(ad_list_view(empty)) == "no ads"
