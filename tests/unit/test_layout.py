"""Pure: the repository's top level is what the project's guide names (pyproject.toml, gamead_cli/,
gamead_core/, tests/, manifests/, config.yaml.example, README.md) and the files that run them; a session once
committed six scratch files there (p3.err, r2.json …)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOP_LEVEL = {"pyproject.toml", "gamead_cli", "gamead_core", "tests", "manifests", "config.yaml.example",
             "README.md", "Makefile", "benchmarks", ".ci", ".gitignore"}


def test_the_top_level_holds_only_what_the_project_names() -> None:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    tracked = subprocess.run(["git", "-C", str(ROOT), "ls-files"], capture_output=True, text=True, check=True)
    top = {line.split("/", 1)[0] for line in tracked.stdout.splitlines() if line}
    assert top - TOP_LEVEL == set(), f"unexpected at the top level: {sorted(top - TOP_LEVEL)}"
