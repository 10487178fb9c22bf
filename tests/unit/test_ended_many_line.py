"""newcomer59: the line a many-ad ``submit --wait`` prints when ads ended dead or failed names them and the command
that lists them, by how they ended (the dead are in the DLQ; a failed one, a purged ad, is an ad with status
failed). Pure."""

from __future__ import annotations

from gamead_cli.program import gamead_program
from gamead_cli.submit.views import ended_many_line

API = " --api http://127.0.0.1:8080"


def test_one_dead_ad_names_its_entry() -> None:
    line = ended_many_line({"failedIds": ["01a"], "dead": 1, "failed": 0}, API)
    assert line == f"1 ad of this run ended dead: 01a; see it with: {gamead_program()} dlq show 01a{API}"


def test_many_name_three_then_the_lists_by_how_they_ended() -> None:
    line = ended_many_line({"failedIds": ["01a", "01b", "01c", "01d", "01e"], "dead": 4, "failed": 1}, API)
    assert line.startswith("5 ads of this run ended dead or failed: 01a, 01b, 01c and 2 more; "), line
    assert f"see the dead with: {gamead_program()} dlq list{API}; " in line, line
    assert line.endswith(f"the failed with: {gamead_program()} ads list --status failed{API} (every id: -o json, "
                         "failedIds)"), line


def test_failed_only_lists_the_failed_ads() -> None:
    line = ended_many_line({"failedIds": ["01a", "01b"], "dead": 0, "failed": 2}, API)
    assert line == (f"2 ads of this run ended failed: 01a, 01b; see them with: {gamead_program()} ads list "
                    f"--status failed{API}")
