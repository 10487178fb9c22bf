"""The README as a reader scans it (newcomer47, readme47c): every section it points to by name (*Name*) is one
section, and the exit-code table has one short line per code, its details in the list under it."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from gamead_cli import exitcodes

README = Path(__file__).resolve().parents[2] / "README.md"


def _prose() -> str:
    """The README without its code blocks (a ``# comment`` in a bash block is no heading)."""
    return re.sub(r"```.*?```", "", README.read_text(encoding="utf-8"), flags=re.S)


def test_every_section_the_readme_names_is_one_section() -> None:
    """``*The audit trail*`` named two ``###`` sections (HTTP API, How it works) and ``*Durations*`` two bold labels
    (Commands, Configuration): a reader sent there could land on either. Before: 2 names ambiguous; after: none."""
    text = _prose()
    names = Counter(m.group(1).strip() for m in re.finditer(r"^#{2,4} (.+)$", text, re.M))
    names.update(m.group(1).rstrip(".") for m in re.finditer(r"^(?:[-*] )?\*\*([^*]+?)\*\*", text, re.M))
    cited = {m.group(1) for m in re.finditer(r"(?<![*\w])\*([A-Z`][^*\n]{2,60}?)\*(?![*\w])", text)}
    assert {name for name in cited if names[name] > 1} == set()
    assert {name for name in cited if names[name] == 0 and not any(n.startswith(name) for n in names)} == set()


def test_each_exit_code_is_one_short_line_with_its_details_under_the_table() -> None:
    """Rows 2, 3 and 5 were 1,625 / 1,016 / 967 characters, which a script author cannot scan; now each is at most
    ~160 and the details are in "What each exit code covers" (the test of the table's rows against
    :data:`gamead_cli.exitcodes.TABLE` is in tests/cli/test_cli_errors.py)."""
    assert [code for code, meaning in exitcodes.TABLE if len(meaning) > 170] == []
    text = README.read_text(encoding="utf-8")
    details = text.split("**What each exit code covers**", 1)[1].split("\n\n", 2)[1]
    assert all(f"- **{code}**" in details for code in (1, 2, 3, 5, 129, 141))


def test_the_stopping_signals_read_as_gamead_up_and_timeout_take_them() -> None:
    """newcomer56b, following the README verbatim: "a second one hurries", but ``kill -HUP`` then ``kill -TERM`` to
    ``gamead up`` drained the full 25 s (a SIGHUP never hurries nor counts: up_signals.hurries); and ``timeout 5
    gamead submit …`` exited 124, not the table's 143 (coreutils' own code). Both are said where a reader looks."""
    import signal

    from gamead_cli.commands.up_signals import hurries

    flat = " ".join(README.read_text(encoding="utf-8").split())
    stopping = flat.split("**Stopping.**", 1)[1].split("**Files.**", 1)[0]
    assert hurries(signal.SIGTERM) and hurries(signal.SIGINT) and not hurries(signal.SIGHUP)
    assert "a second Ctrl-C or SIGTERM hurries" in stopping and "A SIGHUP never does" in stopping, stopping
    details = flat.split("**What each exit code covers**", 1)[1].split("- **141**", 1)[0]
    assert "exits 124" in details and "timeout --preserve-status 5 gamead" in details
