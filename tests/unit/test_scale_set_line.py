"""newcomer49: ``gamead scale set 3`` over no override printed ``override: 3 workers until … (no override stood)``,
which reads oddly; it now says it plainly, ``(no override was set before)``. One that replaced another names it."""

from __future__ import annotations

from gamead_cli.commands.scale import replaced_text


def test_a_set_over_no_override_says_none_was_set_before() -> None:
    assert replaced_text({"replaced": None}) == " (no override was set before)"
    assert replaced_text({}) == " (no override was set before)"


def test_a_set_over_another_names_what_it_replaced() -> None:
    said = replaced_text({"replaced": {"replicas": 5, "until": "2026-12-06T00:28:09.000Z",
                                       "setAt": "2026-12-06T00:18:09.000Z", "setBy": "alice"}})
    assert said.startswith(" (replaced 5 workers until ") and ", set by alice at " in said, said
