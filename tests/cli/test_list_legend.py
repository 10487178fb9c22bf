"""``ads list``'s score says its scale, and an analysis's bullets wrap under their text (regress41 F7): SCORE had no
unit (``ads get`` says ``Effectiveness 4.2 / 10``), and a wrapped Strengths / Suggestions bullet went on at
column 0, under the bullet. Rendered with a rich console of the width, as a terminal shows it."""

from __future__ import annotations

import io
import re

from rich.console import Console, RenderableType
from typer.testing import CliRunner

from gamead_cli.main import app
from gamead_cli.record_views import ad_list_view, analysis_view

LONG = ("Rewrite the description so that it names the game's genre, its audience and one reason to play it now, "
        "in under fifty words")


def rendered(renderable: RenderableType, width: int) -> list[str]:
    console = Console(width=width, file=io.StringIO(), record=True, color_system=None)
    console.print(renderable)
    return console.export_text().splitlines()


def test_the_score_column_says_its_scale_in_the_table_help_and_readme() -> None:
    """The column reads ``SCORE/10`` (0 to 10, as the analysis defines it); ``--help`` and the README say what
    it is. Without the fix: ``SCORE``, and neither said a scale."""
    body = {"items": [{"id": "01m87vaaaaaaaaaaaaaaaaaaa1", "status": "completed", "priority": 2,
                       "submittedAt": "2026-11-24T22:41:13.989Z", "ad": {"title": "Sky Saga", "genre": "RPG"},
                       "analysis": {"effectivenessScore": 4.2}}], "count": 1, "total": 1}
    lines = rendered(ad_list_view(body), 120)
    assert re.split(r"\s{2,}", lines[0].strip())[3] == "SCORE/10" and " 4.2 " in lines[1], lines
    helped = CliRunner().invoke(app, ["ads", "list", "--help"], env={"COLUMNS": "200"}).output
    assert "SCORE/10 is the analysis's effectiveness score, 0 (worst) to 10 (best)" in " ".join(helped.split())
    from pathlib import Path
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    assert "`SCORE/10`: the analysis's `effectivenessScore`, 0 worst to 10 best" in readme


def test_a_wrapped_bullet_goes_on_under_its_text() -> None:
    """At 60 columns a long suggestion wraps; each line after its first starts under the text (4 spaces), none
    at column 0. Without the fix: the wrapped lines started at column 0 (3 of 3)."""
    lines = rendered(analysis_view({"effectivenessScore": 4.2, "strengths": ["Short and clear"],
                                    "improvementSuggestions": [LONG, "Add a call to action"]}), 60)
    start = lines.index("Suggestions")
    bullets = lines[start + 1:]
    assert bullets[0].startswith("  • Rewrite the description") and len(bullets) > 2, lines
    wrapped = bullets[1:bullets.index(next(b for b in bullets if "Add a call to action" in b))]
    assert wrapped and all(b.startswith("    ") and b[4] != " " for b in wrapped), lines
    assert " ".join(b.strip().removeprefix("• ") for b in bullets[:len(wrapped) + 1]) == LONG
    assert "  • Short and clear" in lines
