"""regress44 F4: `gamead dlq import` of an empty export (0 entries) said `imported 0 of 0 lines · skipped 0`,
exit 0, without contacting the API: given an unreachable (or wrong) `--api` it reported success there. Now, as
every verb, it reaches the API first (an empty dry run of `POST /v1/dlq/import`: reachable, a gamead API, this
caller may import): unreachable is exit 3 naming it; a real API says `imported 0 of 0 lines`, exit 0.

Without the fix: the unreachable API gave exit 0 and `imported 0 of 0 lines · skipped 0`."""

from __future__ import annotations

from pathlib import Path

import pytest

from gamead_cli import exitcodes
from tests.cli.test_cli_errors import one_red_line
from tests.support import clean_env, run_gamead


@pytest.mark.parametrize("content", ["", "\n\n"])
def test_an_empty_import_reaches_the_api_first(tmp_path: Path, closed_api_url: str, api_url: str,
                                               content: str) -> None:
    dead = tmp_path / "dead.jsonl"
    dead.write_text(content)
    down = run_gamead("dlq", "import", str(dead), "--api", closed_api_url, env=clean_env(), cwd=tmp_path)
    assert down.returncode == exitcodes.UNREACHABLE, (down.returncode, down.stdout, down.stderr)
    one_red_line(down, closed_api_url)
    assert "imported" not in down.stdout
    up = run_gamead("dlq", "import", str(dead), "--api", api_url, env=clean_env(), cwd=tmp_path)
    assert up.returncode == 0, up.stderr
    assert "imported 0 of 0 lines" in up.stdout, up.stdout
